/*
 * Shared internals of libredlock.  Nothing here is exported: every name is
 * static or redlock__-prefixed so that a vendored static archive cannot
 * clash with its host.
 */
#ifndef REDLOCK_INTERNAL_H
#define REDLOCK_INTERNAL_H

#include "redlock.h"

#include <hiredis/hiredis.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct redlock__conn redlock__conn;


/* ---- error.c: the thread's last error ---------------------------------- */

/* Record a detail message for redlock_last_error() and return st, so that
 * failures read `return redlock__fail(REDLOCK_INVALID, "...", ...);`. */
redlock_status redlock__fail(redlock_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void redlock__clear_error(void);

/* ---- clock.c: monotonic time, sleeping, jitter ------------------------- */

int64_t redlock__now_ns(void);
int64_t redlock__now_ms(void);
/* Sleep until the monotonic deadline (ns), restarting after signals. */
void redlock__sleep_until_ns(int64_t deadline_ns);
/* A uniformly random number in [lo, hi] from a per-thread generator seeded
 * by the system's random source (jitter only, never tokens). */
int64_t redlock__random_between(int64_t lo, int64_t hi);

/* ---- token.c: random tokens --------------------------------------------- */

#define REDLOCK__TOKEN_LEN 36
#define REDLOCK__GRANT_ID_LEN 32
/* Room for what holder_info adds to a token, and for a whole own token. */
#define REDLOCK__HOLDER_MAX 96
#define REDLOCK__OWN_TOKEN_MAX (REDLOCK__TOKEN_LEN + REDLOCK__HOLDER_MAX + 32)
/* A new own token into out (REDLOCK__OWN_TOKEN_MAX bytes): the random
 * UUID, and with holder_info who takes the lock and when. */
struct redlock_client;
redlock_status redlock__own_token(const struct redlock_client *c, char *out);
/* 128 random bits from getrandom(2), as a lower-case v4 UUID. */
redlock_status redlock__new_token(char out[REDLOCK__TOKEN_LEN + 1]);

/* ---- timing.c: interval and validity arithmetic (pure) ----------------- */

/* The watchdog's renewal interval for a lock of ttl_ms: ttl/3, not below
 * floor_ms, never above ttl/2 (and at least 1 ms). */
int64_t redlock__renew_interval_ms(int64_t ttl_ms, int64_t floor_ms);
/* The drift allowance of a ttl: ttl * drift_factor + 2 ms, rounded up. */
int64_t redlock__drift_ms(int64_t ttl_ms, double drift_factor);
/* Monotonic ms at which ownership of a lock set at start_ms with ttl_ms
 * ends: start + ttl - drift. */
int64_t redlock__validity_end_ms(int64_t start_ms, int64_t ttl_ms,
                                 double drift_factor);
/* Jittered delay: delay_ms +- 50 %, at least 1 ms. */
int64_t redlock__jitter_ms(int64_t delay_ms);

/* ---- uri.c: URL parsing (pure) ----------------------------------------- */

/* A Sentinel URL's sentinels, a Cluster URL's seed nodes. */
#define REDLOCK__MAX_HOSTS 16
#define REDLOCK__MAX_SENTINELS REDLOCK__MAX_HOSTS
#define REDLOCK__MAX_SEEDS REDLOCK__MAX_HOSTS

typedef struct redlock__url {
    int is_unix;    /* 1 for unix://, 0 for redis:// */
    int tls;        /* 1 for rediss://, rediss+sentinel://, rediss+cluster:// */
    char *host;     /* redis://: host name or IP literal, brackets removed */
    int port;       /* redis://: 1..65535, default 6379 */
    char *path;     /* unix://: absolute socket path */
    char *user;     /* percent-decoded ACL user, NULL when absent */
    char *password; /* percent-decoded password, NULL when absent */
    int db;         /* >= 0, default 0 */
    /* redis+sentinel:// and redis+cluster://: host and port stay NULL/0
     * (the sentinels name the master, the seeds the cluster's nodes); the
     * URL's addresses are listed in hosts[] and ports[]. */
    int sentinel;   /* 1 for redis+sentinel://: the hosts are sentinels */
    int cluster;    /* 1 for redis+cluster://: the hosts are seed nodes */
    int nhosts;     /* > 0 exactly when sentinel or cluster is set */
    char *hosts[REDLOCK__MAX_HOSTS];
    int ports[REDLOCK__MAX_HOSTS]; /* default 26379 for sentinels, 6379 for
                                      seeds */
    /* Sentinel only: the master's name, and the sentinels' own credentials
     * from the query (NULL when absent). */
    char *master;
    char *sentinel_user;
    char *sentinel_password;
} redlock__url;

/* Parse url into *out (all strings malloc'd, free with redlock__url_clear).
 * On failure *out is left cleared and the status is REDLOCK_INVALID (with a
 * message naming the wrong part, password masked) or REDLOCK_NOMEM. */
redlock_status redlock__url_parse(const char *url, redlock__url *out);
void redlock__url_clear(redlock__url *u);
/* "host:port", "[v6]:port", "unix:/path" or
 * "sentinel:NAME(host:port,...)" for messages: never secrets. */
void redlock__url_describe(const redlock__url *u, char *buf, size_t len);

/* ---- slot.c: Redis Cluster key slots (pure) ---------------------------- */

#define REDLOCK__CLUSTER_SLOTS 16384
/* CRC16-CCITT as XMODEM computes it (poly 0x1021, init 0): Redis's. */
uint16_t redlock__crc16(const char *buf, size_t len);
/* The cluster slot of key[0..len) (binary-safe), by Redis's hash tag rule:
 * when the first '{' has a '}' after it with bytes between the two, only
 * those bytes are hashed, else the whole key. */
unsigned redlock__key_slot(const char *key, size_t len);
/* 1 when key has a non-empty hash tag by that rule. */
int redlock__key_has_tag(const char *key, size_t len);
/* Every key a lock touches in a cluster must be in its key's slot, so the
 * names derived from a key are: "<key><suffix>" for a key with a hash tag
 * (the same tag), else "{<key>}<suffix>" (the key is the tag).  Neither
 * works for a key without a tag that holds a '}' (its own '}' would end the
 * tag early), nor for the empty key ("{}" is no tag): 0 for those, and the
 * names below are then in other slots.  1 otherwise. */
int redlock__cluster_name_ok(const char *key, size_t keylen);
/* Room the braces take: a derived name needs keylen + strlen(suffix) +
 * REDLOCK__CLUSTER_NAME_EXTRA bytes, a channel strlen(prefix) + keylen +
 * REDLOCK__CLUSTER_NAME_EXTRA. */
#define REDLOCK__CLUSTER_NAME_EXTRA 2
/* The derived name into out (not NUL-terminated); returns its length. */
size_t redlock__cluster_name(const char *key, size_t keylen,
                             const char *suffix, char *out);
/* A channel for key, "<prefix><key>" when tagged, else "<prefix>{<key>}"
 * (not NUL-terminated), in the key's slot for sharded Pub/Sub when
 * redlock__cluster_name_ok(key) and prefix holds no '{'; returns its
 * length. */
size_t redlock__cluster_channel(const char *prefix, const char *key,
                                size_t keylen, char *out);

/* ---- reply.c: bounded reply parsing ------------------------------------ */

/* Make c's parser build replies with reply.c's functions: bounded, and
 * from c's arena while it lasts. */
void redlock__reply_setup(redlock__conn *c);
/* Free a reply made by reply.c (never hiredis's freeReplyObject: a reply
 * may live in an arena or keep its string inline).  NULL-safe. */
void redlock__reply_free(void *reply);
/* "an integer", "a bulk string"...: for messages. */
const char *redlock__reply_type_name(int type);
/* 1 when more is buffered towards one reply than any of ours needs. */
int redlock__reply_too_big(const struct redisContext *ctx);

/* ---- sock.c: opening sockets ------------------------------------------ */

/* A socket to the URL's node, close-on-exec and non-blocking, its connect()
 * started (or done); -1 with a reason in err. */
int redlock__sock_open(const redlock__url *u, char *err, size_t errlen);

/* ---- tls.c: OpenSSL (rediss://); stubs without REDLOCK_WITH_TLS ---------- */

struct ssl_ctx_st;
struct redlock__node;
/* Check the tls_* options (tls_cert and tls_key go together) and, when
 * need, build the client's SSL_CTX from them into *out: REDLOCK_INVALID
 * naming the option and path for a file that cannot be used. */
redlock_status redlock__tls_ctx_new(const redlock_options *o, int need,
                                    struct ssl_ctx_st **out);
void redlock__tls_ctx_free(struct ssl_ctx_st *ctx);
/* tls_files.c: REDLOCK_INVALID, naming opt and path, unless path is a
 * readable regular file (a directory whose entries are all regular files
 * or directories), found without ever blocking. */
redlock_status redlock__tls_check_file(const char *opt, const char *path);
redlock_status redlock__tls_check_dir(const char *opt, const char *path);
/* Forget the node's saved session. */
void redlock__tls_node_clear(struct redlock__node *n);
/* Give c (socket open) an SSL for node n, its handshake still to do; the
 * certificate must be for host (the address node n resolved to) unless
 * tls_sni names another. */
redlock_status redlock__tls_start(struct redlock__node *n, redlock__conn *c,
                                  const char *host);
void redlock__tls_free(redlock__conn *c);
/* Advance the handshake: 0 done, 1 waiting (c->tls_events), -1 failed
 * (c->fail). */
int redlock__tls_handshake(redlock__conn *c);
/* SSL_write c->out from c->sent: 0 while healthy, -1 failed (c->fail). */
int redlock__tls_write(redlock__conn *c);
/* SSL_read: bytes read, 0 when it must wait (c->tls_events), -1 failed
 * (c->fail). */
int redlock__tls_read(redlock__conn *c, char *buf, size_t len);
/* OpenSSL holds bytes of c that poll() cannot see. */
int redlock__tls_pending(const redlock__conn *c);

/* ---- resp.c: RESP command formatting (pure) ---------------------------- */

typedef struct redlock__buf {
    char *data;
    size_t len, cap;
} redlock__buf;

/* Append one command in RESP (binary-safe: lengths, never a format).
 * Returns 0, or -1 when out of memory (buf unchanged). */
int redlock__resp_append(redlock__buf *b, int argc, const char *const *argv,
                         const size_t *argvlen);
void redlock__buf_free(redlock__buf *b);
/* v in decimal into out (room for 21 bytes), NUL-terminated; the length.
 * Formats numbers on the hot path without printf. */
size_t redlock__fmt_i64(char *out, int64_t v);

/* ---- scripts.c: the Lua scripts ---------------------------------------- */

typedef struct redlock__script {
    const char *name; /* for messages */
    const char *body;
    const char *sha;  /* 40 hex digits */
    int numkeys;
} redlock__script;

extern const redlock__script redlock__script_release;
/* The same with KEYS[2] the waiter queue (and KEYS[3] the fence counter). */
extern const redlock__script redlock__script_release_queued;
extern const redlock__script redlock__script_release_queued_fenced;
/* A waiter's try with the queue (queue.c), without and with the fence. */
extern const redlock__script redlock__script_enqueue;
extern const redlock__script redlock__script_enqueue_fenced;
/* A semaphore permit's try: KEYS[1] the queue, the slots as extra keys. */
extern const redlock__script redlock__script_sem;
extern const redlock__script redlock__script_extend;
extern const redlock__script redlock__script_acquire;
extern const redlock__script redlock__script_acquire_fenced;
extern const redlock__script redlock__script_inspect;
/* The value a released key holds while handed off to waiters, and for how
 * long (ARGV[2] of the release script). */
#define REDLOCK__HANDOFF_VALUE "redlock:handoff"
#define REDLOCK__HANDOFF_MS "50"
#define REDLOCK__CHANNEL_PREFIX "redlock:release:"
extern const redlock__script *const redlock__scripts[];
extern const size_t redlock__nscripts;

/* ---- node.c: one Redis node, its connection pool and ghost tokens ------ */

/* A token-checked delete owed to a node: pending in the node's list, or
 * in flight on the connection `carrier` until that exchange settles. */
typedef struct redlock__ghost {
    char *key;
    char *token;
    size_t keylen;
    const struct redlock__conn *carrier; /* NULL while pending */
    /* A request for it was given up on (timed out, connection failed) at
     * most one node timeout ago, and may still be applied until then: see
     * redlock__node_claim_ghosts. */
    int64_t late_until_ns;
    struct redlock__ghost *next;
} redlock__ghost;

/* Replies a connection owes before the caller's: a new connection's AUTH
 * and SELECT, then the deletes of ghost tokens. */
typedef struct redlock__prefix {
    int count;     /* replies still to swallow */
    int auth;      /* the next one answers AUTH */
    int select;    /* then one answers SELECT */
    int nghosts;   /* ghost deletes queued (see redlock__ghost.carrier) */
    int role;      /* then one answers ROLE (Sentinel nodes: sentinel.c) */
    int ghost_redo; /* a ghost delete was redirected (cluster): still owed */
} redlock__prefix;

/* A reply object as reply.c makes it: a redisReply with room for a short
 * string, which a connection keeps a few of so that the replies of an
 * ordinary exchange need no allocation (see reply.c). */
typedef struct redlock__reply_slot {
    redisReply r;
    unsigned char pooled; /* lives in a connection's arena */
    char inline_str[47];
} redlock__reply_slot;

#define REDLOCK__ARENA 6

struct redlock__conn {
    struct redisContext *ctx; /* its fd, and its reader (the parser) */
    redlock__buf out;    /* commands not yet sent */
    size_t sent;         /* bytes of out already written */
    int connecting;      /* non-blocking connect() still in progress */
    int64_t connect_deadline_ns; /* bounds connect() and the handshake */
    size_t rx;           /* bytes received so far (raw, TLS included) */
    /* Why the last read or flush failed (redlock__conn_read/_flush). */
    redlock_status fail_st;
    char fail[200];
    /* TLS (tls.c): NULL ssl for a plaintext connection. */
    struct ssl_st *ssl;
    struct redlock__node *node;
    int handshaking;     /* TCP is up, the TLS handshake is not done */
    short tls_events;    /* POLLIN/POLLOUT the last TLS call waits for */
    unsigned char tls_first; /* the first byte received */
    int tls_data;        /* application data was read */
    int tls_cert_wanted; /* the server asked for a certificate we lack */
    int tls_errno;       /* the socket's error behind an SSL failure */
    char *tls_name;      /* the name the certificate must carry */
    redlock__prefix prefix;
    uint64_t gen;   /* the node's gen when opened (see redlock__node) */
    int arena_used; /* slots handed out since the last exchange began */
    int refused_elements; /* an array reply.c refused, for the message */
    redlock__reply_slot arena[REDLOCK__ARENA];
};

typedef struct redlock__node {
    redlock__url url;
    char name[300]; /* redlock__url_describe(), for messages */
    const redlock_options *opts;
    struct redlock_client *client; /* whose watchdog hears it came back */
    int64_t recv_slice_ms; /* a blocking recv()'s bound: see io.c */

    pthread_mutex_t mu; /* guards idle[], nidle, the ghost lists */
    redlock__conn **idle;
    int nidle, idle_cap;
    redlock__ghost *ghosts; /* pending */
    int nghosts;
    redlock__ghost *flying; /* in flight, each on its carrier */
    int nflying;
    pthread_cond_t settled; /* monotonic: a flying ghost settled */
    int settle_waiters;
    /* 1 after the node timed out or was abandoned, until it answers an
     * exchange in full: a decided exchange gives it only a short grace
     * (io.c), so that a stalled node costs each exchange next to nothing. */
    _Atomic int slow;
    /* While slow, in an operation decided by a quorum, only one exchange
     * per node timeout tries it: a stalled node then holds no pile of
     * pipelines that it would have to work through once it resumes
     * (redlock__exchange_until). */
    _Atomic int64_t probe_at_ns;
    /* TLS: the client's context (NULL: plaintext), the newest session to
     * resume (under mu), and counts for tests. */
    struct ssl_ctx_st *tls_ctx;
    struct ssl_session_st *tls_session;
    uint64_t tls_session_gen; /* the gen of the address it came from */
    _Atomic long tls_handshakes, tls_resumed;
    /* A Sentinel URL's state (sentinel.c); NULL for other nodes. */
    struct redlock__sentinel *sentinel;
    /* 1 for a sentinel that a Sentinel node asks (sentinel.c). */
    int is_sentinel;
    /* Bumped when the sentinels move the master: connections opened
     * before are closed, never reused. */
    _Atomic uint64_t gen;
    /* A cluster URL's state (cluster.c), NULL for other nodes; for one of
     * its masters, the cluster node it serves (whose lists hold the
     * ghosts), else NULL. */
    struct redlock__cluster *cluster;
    struct redlock__node *parent;
} redlock__node;

redlock_status redlock__node_init(redlock__node *n, const char *url,
                                  const redlock_options *opts);
void redlock__node_destroy(redlock__node *n);
/* A node for host:port with n's scheme (TLS or not) and options, and the
 * credentials given (NULL: none): a sentinel, a cluster's master. */
redlock_status redlock__node_init_at(redlock__node *peer,
                                     const redlock__node *n, const char *host,
                                     int port, const char *user,
                                     const char *pw);
/* A connection for one exchange, without blocking: an idle one from the
 * pool, or a new one whose connect() is under way with AUTH and SELECT
 * queued.  Pending ghost deletes are queued too (c->prefix).  NULL with
 * the status (and last error) set when none can be had. */
redlock__conn *redlock__node_get(redlock__node *n, redlock_status *st);
/* A new connection of its own (not pooled), connect() under way and AUTH
 * and SELECT queued: complete it with an exchange.  NULL with the status
 * set on failure. */
redlock__conn *redlock__node_connect(redlock__node *n, redlock_status *st);
/* Give the connection back after an exchange: broken != 0 (or a failed
 * context) frees it.  Ghosts in flight are settled: forgotten when
 * deleted (!broken and their replies read), else kept for next time. */
void redlock__node_put(redlock__node *n, redlock__conn *c, int broken);
/* Remember a token whose SET (or DEL) may have been applied without our
 * knowing; it is deleted, token-checked, on the next contact. */
void redlock__node_add_ghost(redlock__node *n, const char *key, size_t keylen,
                             const char *token);
/* Before (key, token) is taken again (acquire by a caller's token,
 * adopt): wait until no delete of it is in flight on another thread's
 * connection, and until one given up on can no longer arrive from the
 * network (one node timeout after it was given up: the delivery bound the
 * protocol assumes).  0 when no delete of it is owed; 1 when some are
 * still pending: the caller must have them sent and answered (an exchange
 * with the node carries them) before its own request, since a request
 * given up on may also sit in a stopped server's buffer, and only an
 * answer to a later one shows it was processed; -1 at deadline_ns.
 * (model rule identity_gate) */
int redlock__node_claim_ghosts(redlock__node *n, const char *key,
                               size_t keylen, const char *token,
                               int64_t deadline_ns);
void redlock__conn_free(redlock__conn *c);

/* ---- sentinel.c: Sentinel URLs (redis+sentinel://) --------------------- */

/* Set up n's sentinels (n->url.sentinel is set). */
redlock_status redlock__sentinel_init(redlock__node *n);
void redlock__sentinel_destroy(redlock__node *n);
/* Where a new connection to n goes: n->url itself, or for a Sentinel node
 * the master the sentinels name (asked now when unknown or stale, bounded
 * by the connect timeout), its host copied into host[0..hostlen).  *gen
 * gets the generation the address belongs to.  0, or -1 with *st set. */
int redlock__node_where(redlock__node *n, redlock__url *where, char *host,
                        size_t hostlen, uint64_t *gen, redlock_status *st);
/* Ask n's sentinels now where the master is (bounded by the connect
 * timeout); a new address bumps n's generation. */
redlock_status redlock__sentinel_resolve(redlock__node *n);
/* n's k-th sentinel (modulo their number). */
redlock__node *redlock__sentinel_peer(redlock__node *n, unsigned k);
/* Ask the sentinels again before n's next new connection. */
void redlock__sentinel_stale(redlock__node *n);
/* n and its sentinels talk TLS through ctx. */
void redlock__sentinel_use_tls(redlock__node *n, struct ssl_ctx_st *ctx);
/* A handshake reply that needs judging: ROLE on a Sentinel node's
 * connection, or an AUTH error from a sentinel.  REDLOCK_OK to go on,
 * else the batch's status with msg set. */
redlock_status redlock__sentinel_prefix(redlock__node *n, const redisReply *r,
                                        int is_role, char *msg, size_t len);
/* An error reply from a Sentinel node that means the master moved
 * (READONLY, MASTERDOWN): 1 (the node is marked stale), else 0. */
int redlock__sentinel_moved(redlock__node *n, const redisReply *r);
/* The client's +switch-master watcher: started by redlock_connect when a
 * node is a Sentinel one.  Stopping it may wait for a subscription under
 * way (the connect and I/O timeouts): redlock_client_free tells it first
 * (join 0), tears down meanwhile, and joins it last (join 1). */
redlock_status redlock__sentinel_watch_start(struct redlock_client *c);
void redlock__sentinel_watch_stop(struct redlock_client *c, int join);

/* ---- cluster.c: Redis Cluster URLs (redis+cluster://) ----------------- */

/* A cluster node is one member of the quorum, whatever its number of
 * masters: each call goes to the master of its key's slot (a shard: a
 * redlock__node of its own, with its pool and its slow flag), and the
 * answers count as that one node's.  Its ghost deletes live in the
 * cluster node's lists and go to the master that owns their slot when a
 * connection to it is taken. */
struct redlock__cluster;
redlock_status redlock__cluster_init(redlock__node *n);
void redlock__cluster_destroy(redlock__node *n);
/* The masters known so far get n's client and TLS context (set after
 * redlock__node_init), as those met later will. */
void redlock__cluster_attach(redlock__node *n);
/* Read the slot map now from the masters known (seeds at first), bounded
 * by deadline_ns and the connect and I/O timeouts. */
redlock_status redlock__cluster_refresh(redlock__node *n, int64_t deadline_ns);
/* The master for slot (the map read when unknown or stale); NULL with *st
 * set when none is known. */
redlock__node *redlock__cluster_route(redlock__node *n, unsigned slot,
                                      int64_t deadline_ns, redlock_status *st);
/* The master the map names for slot now, without asking; NULL when none
 * is known. */
redlock__node *redlock__cluster_lookup(redlock__node *n, unsigned slot);
/* A MOVED error reply (r) that master `from` of cluster n gave: the map
 * learns it (redlock__cluster_moved).  1 when it was one. */
int redlock__cluster_redirected(redlock__node *n, const redlock__node *from,
                                const struct redisReply *r);
/* A master for a keyless command; NULL with *st set. */
redlock__node *redlock__cluster_any(redlock__node *n, int64_t deadline_ns,
                                    redlock_status *st);
/* A -MOVED said slot is served at host:port: route it there from now
 * on; the whole map is read again soon (redlock__cluster_want_map). The
 * master's node, NULL when out of memory. */
redlock__node *redlock__cluster_moved(redlock__node *n, unsigned slot,
                                      const char *host, int port);
/* The master at host:port (created when new); NULL when out of memory. */
redlock__node *redlock__cluster_shard(redlock__node *n, const char *host,
                                      int port);
/* The name of another key of the lock key (a suffix above), written (not
 * NUL-terminated) into out, which has room for keylen +
 * REDLOCK__NAME_EXTRA bytes; returns its length.  "<key><suffix>",
 * except for a client with a cluster node (c->cluster_names), where every
 * key of a lock must share its slot: then "{<key>}<suffix>" for a key
 * without a hash tag (see redlock__cluster_name). */
#define REDLOCK__NAME_EXTRA 24
size_t redlock__derived_name(const redlock_client *c, const char *key,
                             size_t keylen, const char *suffix, char *out);
/* REDLOCK_INVALID unless key's other keys can share its slot on this
 * client's nodes (a key with a '}' but no hash tag cannot, on a cluster). */
redlock_status redlock__check_derived(const redlock_client *c,
                                      const char *key, size_t keylen);
/* A master failed: read the map again before the next routing. */
void redlock__cluster_stale(redlock__node *n);
/* 1 once after a MOVED: the caller asks for the map (CLUSTER SLOTS) in a
 * round trip it makes anyway, and hands the answer to _cluster_map. */
int redlock__cluster_want_map(redlock__node *n);
/* Install a CLUSTER SLOTS answer that shard gave: 0, or -1 when it is not
 * one (the map is left as it was). */
int redlock__cluster_map(redlock__node *n, redlock__node *shard,
                         const struct redisReply *r);
/* Up to max masters of the map (read when unknown) into out: their
 * number, or -1 with *st set. */
int redlock__cluster_masters(redlock__node *n, redlock__node **out, int max,
                             int64_t deadline_ns, redlock_status *st);
/* The cluster's map names shard as the master of key's slot. */
int redlock__cluster_owns(const redlock__node *shard, const char *key,
                          size_t keylen);
/* The slot of a call's key (scripts: their first key; commands: the
 * first argument; keyless commands: -1). */
struct redlock__call;
int redlock__call_slot(const struct redlock__call *c);

/* ---- io.c and quorum.c: commands to N nodes at once -------------------- */

#define REDLOCK__MAX_ARGS 8

/* One command to one node, and its reply. */
typedef struct redlock__call {
    const redlock__script *script; /* EVALSHA with EVAL fallback, or NULL */
    int argc; /* for scripts: keys then args, without EVALSHA/sha/numkeys */
    const char *argv[REDLOCK__MAX_ARGS];
    size_t argvlen[REDLOCK__MAX_ARGS];
    /* A longer call (a semaphore's slots): these xargc arguments follow
     * argv's, and a script's first xkeys of them are keys too. */
    int xargc, xkeys;
    const char *const *xargv;
    const size_t *xargvlen;
    struct redisReply *reply; /* owned; NULL when no answer came */
    /* Send a script as EVAL at once (cluster.c: after an ASK, where the
     * importing node's script cache is unknown and a NOSCRIPT's EVAL would
     * go without the ASKING it needs). */
    unsigned char eval;
    /* A keyless call to a cluster node: the master it goes to (NULL: any,
     * or the one of the call before it). */
    struct redlock__node *shard;
} redlock__call;

/* A connection an exchange took for part of a batch (cluster.c: one per
 * master the batch's calls went to), given back by batches_clear. */
typedef struct redlock__subconn {
    struct redlock__node *node;
    redlock__conn *conn;
    int broken;
} redlock__subconn;

/* The calls for one node and how they went. */
typedef struct redlock__batch {
    redlock__node *node;
    redlock__call *calls;
    int ncalls;
    redlock_status st; /* OK: every call has a reply (maybe an error one) */
    int uncertain; /* failed after sending: the server may have applied it */
    char err[256]; /* detail when st != OK */
    /* A cluster node's batch whose calls went to several masters and not
     * all of them answered: st tells the first failure, and the calls
     * that have a reply have a real one (the others none). */
    int partial;
    /* private to io.c / quorum.c / cluster_io.c */
    redlock__subconn *subs;
    int nsubs;
    redlock__conn *conn;
    int pending; /* replies still expected this round */
    int cursor;  /* the next call whose reply is NULL */
} redlock__batch;

/* Append a call in RESP to the connection: EVALSHA (or EVAL when eval is
 * set) for scripts.  0, or -1 when out of memory. */
int redlock__conn_append_call(redlock__conn *c, const redlock__call *call,
                              int eval);
/* Send as much of c->out as the socket takes now (MSG_NOSIGNAL, or
 * SSL_write once the TLS handshake is done).  0 while healthy (all sent,
 * or the rest must wait for poll), -1 on failure with c->fail set. */
int redlock__conn_flush(redlock__conn *c);
/* Read what has arrived into c's reader, without blocking: for TLS until
 * OpenSSL has nothing buffered (poll() cannot see that).  0 while healthy,
 * -1 on failure (closed, reset, TLS alert, bad bytes) with c->fail set. */
int redlock__conn_read(redlock__conn *c);
/* The poll() events c waits for: out = output pending, in = replies
 * expected. */
short redlock__conn_events(const redlock__conn *c, int out, int in);
/* Write every batch's pending output and read b->pending replies into the
 * calls whose reply is NULL, all connections at once, until done or
 * deadline_ns.  Sets st, uncertain and err of batches that fail. */
void redlock__io_run(redlock__batch *b, int n, int64_t deadline_ns);

/* When an operation's outcome is known before every node answered: once
 * at least `quorum` batches have all their replies, decided(b, n, arg) is
 * asked (again whenever a batch completes or fails); on 1 the batches
 * still running get a grace (see io.c: grace_ns), then are abandoned:
 * failed (REDLOCK_IO) and uncertain, their connections reset. */
typedef struct redlock__decider {
    int quorum;
    int (*decided)(const redlock__batch *b, int n, void *arg);
    void *arg;
    /* Ask every node, even one that stopped answering lately (see
     * quorum.c, skip_slow): asking the sentinels needs a majority. */
    int ask_all;
} redlock__decider;

/* redlock__io_run that stops once d decides (d may be NULL). */
void redlock__io_run_until(redlock__batch *b, int n, int64_t deadline_ns,
                           const redlock__decider *d);

/* Send every batch's calls to its node concurrently (pipelined per node),
 * and read the replies until all are in or deadline_ns passes.  A NOSCRIPT
 * reply to an EVALSHA is answered by one EVAL to that node.  The replies
 * (in the calls) and the connections stay with the batches until
 * redlock__batches_clear(), which every exchange must be followed by. */
void redlock__exchange(redlock__batch *b, int n, int64_t deadline_ns);
/* redlock__exchange that stops waiting once d decides (see
 * redlock__decider): a stalled minority then holds nothing up. */
void redlock__exchange_until(redlock__batch *b, int n, int64_t deadline_ns,
                             const redlock__decider *d);
/* Free the replies, then give the connections back: to the pool, or
 * closed when they failed or timed out. */
void redlock__batches_clear(redlock__batch *b, int n);
/* redlock__exchange_until for batches that all go to plain nodes (one
 * connection each). */
void redlock__exchange_plain(redlock__batch *b, int n, int64_t deadline_ns,
                             const redlock__decider *d);
/* cluster_io.c: redlock__exchange_until for batches of which some are
 * cluster nodes' (quorum.c sends them here). */
void redlock__cluster_exchange(redlock__batch *b, int n, int64_t deadline_ns,
                               const redlock__decider *d);
/* io.c: every reply of the batch is in. */
int redlock__batch_complete(const redlock__batch *b);
/* Classify an error reply: REDLOCK_AUTH (NOAUTH, WRONGPASS, NOPERM) or
 * REDLOCK_SERVER. */
redlock_status redlock__reply_error_status(const struct redisReply *r);

/* ---- client.c / lock.c ------------------------------------------------- */

struct redlock_lock {
    redlock_client *client;
    struct redlock_lock *prev, *next; /* the client's live handles */
    _Atomic int held;
    _Atomic int64_t validity_end_ms; /* monotonic */
    _Atomic int64_t ttl_ms; /* what extend and the watchdog renew with */
    int64_t acquired_ms; /* monotonic, for max_hold_ms */
    int64_t fence;
    size_t keylen;
    /* Watchdog state, guarded by the client's wd_mu. */
    int wd_index;  /* position in the heap, -1 when not in it */
    int wd_keep;   /* handed to the watchdog and not yet taken back */
    int wd_busy;   /* the watchdog works on it outside the mutex */
    /* Found lost by another thread (a sibling's acquire saw the key gone),
     * for the watchdog to report with on_lost. */
    _Atomic int lost_untold;
    int64_t wd_due_ms;
    /* Identity (handles.c), guarded by the client's mu. */
    struct redlock_lock *id_next;
    uint32_t id_hash;
    int id_state; /* REDLOCK__H_* */
    uint64_t held_seq; /* the client's held_seq when it became held */
    char *key;   /* in the same allocation as the handle */
    char *token; /* ditto */
    /* With the waiter queue (queue.c): its name, and the fence counter's
     * when fencing is on; NULL otherwise.  Same allocation. */
    char *qkey, *fkey;
    size_t qkeylen, fkeylen;
    /* On a cluster client, the shard channel its release publishes on
     * ("redlock:release:{<key>}", in key's slot); NULL otherwise.  Same
     * allocation, with room for any of a semaphore's slots. */
    char *schan;
    size_t schanlen;
    /* A semaphore's permit: its number of slots (0 for a lock), and the
     * semaphore's name; key names the slot once one is taken (room for
     * the longest slot name is kept in the allocation). */
    int sem_n;
    char *sem_name;
    size_t sem_namelen;
};

struct redlock_watchdog;

struct redlock_client {
    redlock_options opts; /* its tls_* strings are the client's copies */
    struct ssl_ctx_st *tls_ctx; /* NULL when no node uses TLS */
    char *tls_copies[5];
    int nnodes, quorum;
    redlock__node *nodes;
    /* Releases hand the lock to one queued waiter (queue.c): one node and
     * no min_replicas.  Set at connect. */
    int queued;
    /* A node is a cluster: a lock's other keys are named to share its
     * slot (redlock__derived_name).  Set at connect. */
    int cluster_names;
    /* Random, names the client's grant channel "redlock:grant:<id>". */
    char grant_id[REDLOCK__GRANT_ID_LEN + 1];
    /* ";host=<name>;pid=<pid>" for tokens (holder_info), else "". */
    char holder[REDLOCK__HOLDER_MAX];
    _Atomic uint64_t grant_seq; /* numbers the waits' queue entries */

    pthread_mutex_t mu; /* guards the handles: list, identity table */
    redlock_lock *locks;
    redlock_lock **ids; /* by (key, token), chained through id_next */
    size_t ids_cap, nids;
    pthread_cond_t ids_cv; /* monotonic: a delete of some identity ended */
    int ids_waiters;
    uint64_t held_seq; /* counts handles becoming held */

    pthread_mutex_t wd_mu; /* guards wd and every lock's wd_* fields */
    struct redlock_watchdog *wd; /* NULL until the first keepalive */

    pthread_mutex_t notify_mu; /* guards notify's creation */
    /* NULL until the first wait; read without the mutex (every release
     * looks), set once, cleared only by redlock_client_free. */
    struct redlock_notifier *_Atomic notify;

    /* The +switch-master watcher (sentinel.c), NULL without Sentinel
     * nodes. */
    struct redlock__sentinel_watch *sentinel_watch;
};

/* Extend each lock by its ttl_ms on every node at once (the watchdog's
 * batched renewal; max_ttl[i] > 0 caps lock i's ttl).  st[i] gets
 * OK (validity updated), NOT_HELD (marked lost), or a failure. */
void redlock__renew(redlock_client *c, redlock_lock **locks, int n,
                    const int64_t *ttl, redlock_status *st);
/* redlock_acquire()'s argument checks (last error set on failure), and
 * the monotonic end of its wait in *until_ns (INT64_MAX: forever). */
redlock_status redlock__acquire_args(redlock_client *c, const char *key,
                                     int64_t ttl_ms, int64_t wait_ms,
                                     redlock_lock **lock, int64_t *until_ns);
/* One try of l's key (its token new for the try) on every node, with the
 * acquire script (as_waiter: it may take a key handed off to waiters);
 * undone where it failed.  *pttl_hint: the holder's ttl left, or -1. */
redlock_status redlock__attempt(redlock_client *c, redlock_lock *l,
                                int64_t ttl_ms, int as_waiter,
                                int64_t deadline_ns, int64_t *validity_end,
                                int64_t *pttl_hint);
/* l was acquired: held from now, with this ttl, validity and fence. */
void redlock__acquired(redlock_lock *l, int64_t ttl_ms, int64_t validity_end,
                       int64_t fence);
/* Mark a lock lost: held 0, validity 0. */
void redlock__mark_lost(redlock_lock *l);
/* Release, best effort, every handle still alive and free them, all by
 * deadline_ns.  Nodes set in *dead are not contacted; a node that fails
 * is added to it, so that the teardown waits for it once at most. */
void redlock__release_all(redlock_client *c, int64_t deadline_ns,
                          uint32_t *dead);

/* ---- handles.c: a client's handles and their identities ---------------- */

/* A handle's part in its identity (key, token). */
enum {
    REDLOCK__H_ATTEMPT,  /* being acquired (or adopted) */
    REDLOCK__H_HELD,     /* acquired */
    REDLOCK__H_DELETING, /* its release or undo is in flight */
    REDLOCK__H_GONE,     /* released without deleting: others hold the key */
    REDLOCK__H_SHORTENING /* held, and a renewal that may lower the key's
                             ttl is in flight */
};

/* A new handle, in state ATTEMPT, listed in the client; NULL when out of
 * memory. */
redlock_lock *redlock__handle_new(redlock_client *c, const char *key,
                                  size_t keylen, const char *token);
/* Unlist and free it, waking claimers that waited for its delete. */
void redlock__handle_free(redlock_lock *l);
/* A new semaphore permit handle (key = the semaphore's name until a slot
 * is taken), listed in the client; NULL when out of memory. */
redlock_lock *redlock__handle_new_sem(redlock_client *c, const char *name,
                                      size_t namelen, const char *token,
                                      int n);
/* Point a permit handle at slot i: its key (and fence counter) become the
 * slot's, and its identity moves with them. */
void redlock__handle_slot(redlock_lock *l, int slot);
/* The name of slot i of semaphore name: "<name>:redlock:<i>" (as
 * redlock__derived_name words it), written into out (room: namelen +
 * REDLOCK__SLOT_EXTRA); returns its length. */
#define REDLOCK__SLOT_EXTRA 24
size_t redlock__slot_name(const redlock_client *c, const char *name,
                          size_t namelen, int slot, char *out);
/* The shard channel of key's releases on a cluster: "redlock:release:"
 * then the key, in braces unless it has a hash tag (so, in its slot);
 * out has keylen + REDLOCK__SCHAN_EXTRA bytes; returns its length. */
#define REDLOCK__SCHAN_EXTRA 32
size_t redlock__release_channel(const char *key, size_t keylen, char *out);
/* Give an own-token attempt a new random token (each try its own, so that
 * a ghost delete of an earlier try can never match a later one). */
redlock_status redlock__handle_retoken(redlock_lock *l);
/* The attempt succeeded. */
void redlock__handle_held(redlock_lock *l);
/* About to delete l's token on the nodes (release, undo): 1 when l is the
 * only handle of its identity held or being acquired, and it is now
 * DELETING; 0 when another one is, and nothing may be deleted (leaving:
 * l is being released, and stops counting).  (model rules release_last,
 * undo_acquire) */
int redlock__handle_begin_delete(redlock_lock *l, int leaving);
/* An undo is over: back to ATTEMPT. */
void redlock__handle_end_delete(redlock_lock *l);
/* Before sending an attempt of a token that is not new: wait until no
 * delete of l's identity by this client is in flight, and claim the ghost
 * deletes of it (redlock__node_claim_ghosts), all by deadline_ns.  0, or -1
 * with the last error set (REDLOCK_IO).  (model rule identity_gate) */
int redlock__handle_claim(redlock_lock *l, int64_t deadline_ns);
/* An attempt of l's identity found the token on fewer than a quorum of
 * nodes (it had to place it): every other handle of the identity that
 * believed it held the key was wrong for a while (a node restarted empty,
 * the key expired), and another token may have held it meanwhile.  Mark
 * them lost, so that the loss is told (redlock_held(), on_lost at the
 * watchdog's next look) rather than hidden by the new SET. */
void redlock__handle_siblings_lost(redlock_lock *l, uint64_t before);
/* The client's held_seq now: taken before an attempt is sent, so that
 * redlock__handle_siblings_lost judges only the handles that held the key
 * before the attempt's scripts ran (one acquired meanwhile may have placed
 * its token after them). */
uint64_t redlock__handle_seq(redlock_client *c);
/* Another handle of l's identity holds the key (as far as it knows). */
int redlock__handle_has_holder(redlock_lock *l);
/* About to renew (extend) ls[k] with some ttl: lower[k] = 1 when the
 * renewal may also lower the key's ttl, which is so only for a held handle
 * that is alone in its identity (it is SHORTENING until the end, and new
 * attempts of the identity wait); 0 when it must only raise it, since
 * another handle of the token may count on a longer one.  One mutex for
 * the whole batch.  (Not in the model, which has one ttl.) */
void redlock__handles_begin_renew(redlock_lock **ls, int n, char *lower);
void redlock__handles_end_renew(redlock_lock **ls, int n, const char *lower);

/* ---- notify.c: waiters woken by release notifications ------------------ */

typedef struct redlock__watch redlock__watch;

/* Listen for releases of key (SUBSCRIBE on every node, shared by all the
 * client's waiters of that key).  *seen gets the current generation.  NULL
 * when no notifier can run (the caller then polls). */
redlock__watch *redlock__notify_watch(redlock_client *c, const char *key,
                                      size_t keylen, uint64_t *seen);
/* Sleep until the key's generation moves past *seen (a release was
 * published, the subscription was confirmed or re-made) or until_ns;
 * updates *seen.  1 when woken by the notifier. */
int redlock__notify_wait(redlock_client *c, redlock__watch *w, uint64_t *seen,
                         int64_t until_ns);
/* redlock__notify_wait for any of n watches (a semaphore's slots). */
int redlock__notify_wait_any(redlock_client *c, redlock__watch *const *ws,
                             uint64_t *seen, int n, int64_t until_ns);
/* 1 while notifications for w can be trusted to arrive. */
int redlock__notify_live(redlock_client *c, redlock__watch *w);
void redlock__notify_unwatch(redlock_client *c, redlock__watch *w);
/* 1 when this client's notifier still has key's channel subscribed with
 * nobody waiting (the subscription outlives the wait by a round trip): a
 * release by this client must not count it as a waiter to hand off to. */
int redlock__notify_draining(redlock_client *c, const char *key,
                             size_t keylen);
void redlock__notify_stop(redlock_client *c);
/* A node's address changed (Sentinel): wake the notifier, which moves
 * that node's subscription to the new master. */
void redlock__notify_moved(redlock_client *c);

/* A wait's place in the queue, for the notifier to hand its grant to
 * (queue.c).  Owned by the waiting thread; the notifier fills in granted
 * and fence under its mutex. */
typedef struct redlock__grant {
    const char *key;
    size_t keylen;
    /* The wait's queue (its grants' channel names it on a cluster). */
    const char *qkey;
    size_t qkeylen;
    /* On a cluster, the subscription of that channel (notify.c). */
    struct redlock__watch *gw;
    const char *token;
    uint64_t seq;
    int granted;
    int64_t fence;
    int64_t ttl; /* the ttl the grant set */
    int sem;  /* > 0: key names a semaphore of that many slots, and a grant
                 names one of them */
    int slot; /* the slot granted */
    pthread_cond_t cv; /* signalled for this wait alone */
    struct redlock__grant *next;
} redlock__grant;

/* Listen for grants to g (starting the notifier, which subscribes to the
 * client's grant channel).  *seen gets the channel's generation.  -1 when
 * no notifier can run. */
int redlock__notify_expect(redlock_client *c, redlock__grant *g,
                           uint64_t *seen);
/* Sleep until g is granted, the grant channel's generation moves past
 * *seen (subscribed, or re-subscribed after a break: grants may have been
 * missed), or until_ns.  Updates *seen; returns g->granted. */
int redlock__notify_await(redlock_client *c, redlock__grant *g,
                          uint64_t *seen, int64_t until_ns);
/* 1 when g's grant channel is subscribed (after redlock__notify_expect):
 * the client's, or on a cluster g's queue's. */
int redlock__notify_grants_live(redlock_client *c, const redlock__grant *g);
/* Stop listening for g; a grant that comes later is ignored. */
void redlock__notify_unexpect(redlock_client *c, redlock__grant *g);

/* ---- queue.c: handing a released lock to one waiter (one node) --------- */

/* The names of a lock's other keys: its waiter queue, its fence counter,
 * a semaphore's queue ("<key><suffix>"); see redlock__derived_name. */
#define REDLOCK__QUEUE_SUFFIX ":redlock:q"
#define REDLOCK__FENCE_SUFFIX ":fence"
#define REDLOCK__SEMQ_SUFFIX ":redlock:sq"
/* Wait for l's key in the queue until until_ns (INT64_MAX: forever), as
 * redlock_acquire does; on REDLOCK_OK *validity_end and *fence are set. */
redlock_status redlock__queue_wait(redlock_client *c, redlock_lock *l,
                                   int64_t ttl_ms, int own_token,
                                   int64_t until_ns, int64_t *validity_end,
                                   int64_t *fence);

/* One try of a semaphore permit (no wait, no queue); on REDLOCK_OK the
 * handle names its slot and *validity_end is set. */
redlock_status redlock__queue_sem_try(redlock_client *c, redlock_lock *l,
                                      int64_t ttl_ms, int64_t *validity_end);

/* ---- thread.c ---------------------------------------------------------- */

/* Start a library thread with every signal blocked, so that it never takes
 * a signal meant for the host (SIGPIPE included).  0 or an errno. */
int redlock__thread_start(pthread_t *t, void *(*fn)(void *), void *arg);
/* A condition variable on CLOCK_MONOTONIC, and a wait on it until a
 * monotonic deadline in ns (INT64_MAX: no deadline). */
void redlock__cond_init_monotonic(pthread_cond_t *cv);
void redlock__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                              int64_t deadline_ns);

/* ---- watchdog.c -------------------------------------------------------- */

redlock_status redlock__watchdog_add(redlock_lock *l);
/* Take the lock out of the watchdog, waiting for a renewal in flight; 1
 * when it was kept alive. */
int redlock__watchdog_remove(redlock_lock *l);
/* The same in two steps: take it out (no renewal starts any more, and a
 * loss found by one in flight is not reported to on_lost), then wait for
 * the renewal in flight, if any, before freeing the handle. */
int redlock__watchdog_take(redlock_lock *l);
void redlock__watchdog_wait_idle(redlock_lock *l);
void redlock__watchdog_stop(redlock_client *c);
/* A node that had stopped answering answers again: have every kept-alive
 * lock renewed now, which puts its key back there (see redlock__renew),
 * rather than at each lock's next turn: until then a lock taken or renewed
 * while the node was away rests on a bare quorum, and the next node to
 * stall would lose it. */
void redlock__watchdog_node_back(redlock_client *c);

/* ---- heap.c: the deadline heap (pure) ---------------------------------- */

typedef struct redlock__heap {
    redlock_lock **items;
    int n, cap;
} redlock__heap;

int redlock__heap_push(redlock__heap *h, redlock_lock *l); /* 0 or -1 */
redlock_lock *redlock__heap_top(const redlock__heap *h);
void redlock__heap_remove(redlock__heap *h, redlock_lock *l);
void redlock__heap_free(redlock__heap *h);

#endif
