/*
 * libredlock: mutual exclusion across processes and machines through Redis.
 *
 * A lock is a Redis key whose value is the holder's random token:
 * SET key token NX PX ttl takes it, a token-checked Lua script releases or
 * extends it, and a watchdog thread can keep it alive.  With N independent
 * Redis masters the same operations run on all of them concurrently and the
 * lock is held only with a majority (the Redlock algorithm); one node is
 * simply N = 1.
 *
 *     redlock_client *c = redlock_connect(urls, 1, NULL, &st);
 *     redlock_lock *l;
 *     if (redlock_acquire(c, "job:nightly", 30000, 0, &l) == REDLOCK_OK) {
 *         redlock_keepalive(l);        // renewed every ttl/3 until released
 *         do_work();                   // check redlock_held(l) when it matters
 *         redlock_release(l);          // frees l, whatever it returns
 *     }
 *     redlock_client_free(c);
 *
 * Conventions, true of every function below:
 *  - Durations are milliseconds: int64_t in calls, int in options.
 *  - Nothing is printed, nothing aborts, no process-wide state is changed
 *    (signal dispositions included).  A failing call returns a status and
 *    leaves a detail message for redlock_last_error() in the calling thread.
 *  - Messages never contain a password.
 *  - Every call that talks to Redis is bounded by the connect and I/O
 *    timeouts, except a wait the caller asked to last forever.
 *
 * Threads: a redlock_client is safe to share between threads.  A
 * redlock_lock handle belongs to one thread at a time, except that
 * redlock_held() and redlock_validity_ms() may be called from any thread
 * while the watchdog works on the lock.
 *
 * Signals: the library writes to sockets with MSG_NOSIGNAL, so a closed
 * connection never raises SIGPIPE, and the library's threads (the
 * watchdog, started by the first redlock_keepalive(), and the notifier,
 * started by the first wait) block every asynchronous signal so that they
 * never steal one meant for the host.
 * Calls are not async-signal-safe.
 *
 * fork(): a child process may not use a client or lock created before the
 * fork (their sockets and threads belong to the parent); it may create new
 * ones.  Sockets are close-on-exec, so a child that execs inherits none.
 */
#ifndef REDLOCK_H
#define REDLOCK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(REDLOCK_STATIC)
#define REDLOCK_API
#elif defined(REDLOCK_BUILDING)
#define REDLOCK_API __attribute__((visibility("default")))
#else
#define REDLOCK_API
#endif

#define REDLOCK_VERSION_MAJOR 0
#define REDLOCK_VERSION_MINOR 1
#define REDLOCK_VERSION_PATCH 0
#define REDLOCK_VERSION_STRING "0.1.0"
/* Comparable number: (major << 16) | (minor << 8) | patch. */
#define REDLOCK_VERSION_NUMBER                                               \
    ((REDLOCK_VERSION_MAJOR << 16) | (REDLOCK_VERSION_MINOR << 8) |          \
     REDLOCK_VERSION_PATCH)

/* wait_ms for redlock_acquire(): wait until the lock is free, however long. */
#define REDLOCK_WAIT_FOREVER ((int64_t)-1)

/* The largest ttl_ms accepted: 2^40 ms, about 34 years. */
#define REDLOCK_TTL_MAX ((int64_t)1 << 40)

/* The longest token redlock_acquire_as() and redlock_adopt() accept, in
 * bytes (without the NUL). */
#define REDLOCK_TOKEN_MAX 65536

/* The most slots (holders at once) a semaphore may have. */
#define REDLOCK_SEMAPHORE_MAX 1024

/* The most Redis nodes one client may use. */
#define REDLOCK_MAX_NODES 32

/*
 * Status codes, made with their messages from one list (see
 * redlock_strerror()).  XX(NAME, value, message).
 */
#define REDLOCK_STATUS_MAP(XX)                                                \
    XX(OK, 0, "success")                                                      \
    XX(BUSY, 1, "the lock is held by another owner")                          \
    XX(NOT_HELD, 2, "the lock is not held by this token")                     \
    XX(IO, 3, "Redis unreachable, timed out, or too few nodes answered")      \
    XX(SERVER, 4, "Redis answered with an error")                             \
    XX(AUTH, 5, "authentication refused by Redis")                            \
    XX(INVALID, 6, "invalid argument, URL or option")                         \
    XX(NOMEM, 7, "out of memory")                                             \
    XX(TLS, 8, "TLS handshake or certificate check failed")

typedef enum redlock_status {
#define REDLOCK_STATUS_ENUM_(name, value, msg) REDLOCK_##name = value,
    REDLOCK_STATUS_MAP(REDLOCK_STATUS_ENUM_)
#undef REDLOCK_STATUS_ENUM_
} redlock_status;
/*
 * What each status means:
 *  REDLOCK_OK        success.
 *  REDLOCK_BUSY      held by another token: a try failed, the wait ran out,
 *                    or other holders took the votes.
 *  REDLOCK_NOT_HELD  our token is gone: expired, released or taken over.
 *  REDLOCK_IO        unreachable, timed out, too few nodes answered for a
 *                    quorum, no validity left after a slow quorum, or a
 *                    node not serving for now (-LOADING, -BUSY,
 *                    -MASTERDOWN, -TRYAGAIN, -CLUSTERDOWN).  Passes by
 *                    itself: a wait retries it.
 *  REDLOCK_SERVER    Redis answered with an error (WRONGTYPE, OOM,
 *                    READONLY...), or the key is not a lock (wrong type).
 *  REDLOCK_AUTH      NOAUTH, WRONGPASS, or a refused ACL user.
 *  REDLOCK_INVALID   a bad argument, URL or option.
 *  REDLOCK_NOMEM     an allocation failed; nothing was lost.
 *  REDLOCK_TLS       the TLS handshake failed for a reason waiting will not
 *                    cure: the server's certificate is from an unknown CA,
 *                    for another name, expired or not yet valid; the
 *                    server wants a client certificate or refused ours; a
 *                    plaintext server on a TLS URL or the reverse, when it
 *                    answers in the other protocol (Redis itself does not:
 *                    a plaintext Redis ignores a TLS handshake until the
 *                    connect timeout, and a TLS port resets a plaintext
 *                    connection; both are REDLOCK_IO, their messages
 *                    saying to check the URL's scheme).  The message says
 *                    which.  Ends a wait, as REDLOCK_AUTH does.
 */

/* A connection to 1..REDLOCK_MAX_NODES Redis nodes.  Opaque. */
typedef struct redlock_client redlock_client;
/* One held (or formerly held) lock.  Opaque. */
typedef struct redlock_lock redlock_lock;

typedef struct redlock_options {
    /* Bound on opening one connection, TCP and handshake. [2000] */
    int connect_timeout_ms;
    /* Bound on one request/reply exchange. [2000] */
    int io_timeout_ms;
    /* Bound on each node's answer within a quorum operation; the Redlock
     * paper advises one much shorter than the ttl. [0 = io_timeout_ms] */
    int node_timeout_ms;
    /* Delay between tries while waiting, jittered by +-50 %. [100] */
    int retry_delay_ms;
    /* Clock drift allowance: validity = ttl - elapsed - (ttl * drift + 2).
     * Must lie in [0, 0.5). [0.01] */
    double drift_factor;
    /* The watchdog renews every ttl/3, but not more often than this, and
     * never less often than every ttl/2. [5000] */
    int renew_floor_ms;
    /* Total time a kept-alive lock may be held, from its acquire: the
     * watchdog's last renewal uses the time left before the cap as its
     * ttl, so the lock is held until the cap and lost there (on_lost is
     * called).  [0 = no cap] */
    int max_hold_ms;
    /* Non-zero: each acquire also increments the counter key "<key>:fence"
     * ("{<key>}:fence" on a cluster, for a key without a hash tag: in the
     * key's slot) and redlock_fence() returns the new value.  A cluster
     * counts as one node.  Single node only: with
     * N > 1 each node counts on its own, and per-node counters are no
     * fencing token.  The counter must never be deleted or expire (the
     * numbers would start again), nor be used as a lock name: an acquire
     * whose counter has a ttl or holds no number (someone's lock) fails
     * with REDLOCK_SERVER before anything is written, and a lock on a
     * counter's name that exists is simply never free. [0] */
    int fencing;
    /* After an acquire or extend, WAIT until this many replicas have the
     * write (WAIT's own timeout is half of node_timeout_ms); fewer is a
     * failure of that node's vote, and a failed acquire's key is deleted.
     * For a single master with replicas: it narrows, but does not close,
     * the window in which a failover loses the lock. [0] */
    int min_replicas;
    /* Non-zero: the tokens the library makes say who took the lock, for
     * `redlock list` and redlock_list() to show at 3 a.m.:
     * "<uuid>;host=<host name>;pid=<pid>;since=<Unix time, ms>" instead of
     * the bare 36-character UUID (a plain SET NX client on the same key
     * sees only another value; size token buffers for the longer form).
     * Caller's tokens are never changed.  The redlock tool sets it. [0] */
    int holder_info;
    /* Called on the watchdog thread, once, when a kept-alive lock is found
     * lost.  It must return quickly and must not free or release the lock;
     * it may read it (redlock_key(), redlock_token()...). [NULL] */
    void (*on_lost)(const redlock_lock *lock, void *arg);
    void *on_lost_arg;

    /* ---- TLS: rediss:// and rediss+sentinel:// URLs (README, "TLS") ----
     * The strings are copied by redlock_connect(); files are read there
     * (a missing or unreadable one is REDLOCK_INVALID, never a hang). */
    /* Non-zero: redis:// and redis+sentinel:// URLs use TLS too, as if
     * written rediss:// (redis-cli's --tls).  unix:// never does. [0] */
    int tls;
    /* CA certificates the servers' certificates must chain to: a PEM
     * bundle file and/or a directory prepared with `openssl rehash`.
     * [both NULL: the system's store (/etc/ssl/certs, or $SSL_CERT_FILE
     * and $SSL_CERT_DIR as OpenSSL reads them)] */
    const char *tls_cacert;
    const char *tls_cacertdir;
    /* A client certificate (PEM, chain allowed) and its unencrypted
     * private key (PEM), for servers that check clients
     * (tls-auth-clients).  Both or neither. [NULL] */
    const char *tls_cert;
    const char *tls_key;
    /* The server name sent in SNI and that the certificate must carry
     * (its subjectAltName; the CN never counts).  Non-empty, at most 253
     * bytes, no spaces or control characters; it applies to every node,
     * and to a Sentinel URL's sentinels too.  [NULL: the URL's host (a
     * Sentinel node's: the address the sentinels give); an IP literal is
     * checked against the certificate's IP addresses and sends no SNI] */
    const char *tls_sni;
    /* DANGEROUS, for tests and emergencies only.  Non-zero accepts any
     * certificate from anyone: no chain, name or date check, so whoever
     * can reach the path can pose as Redis and hand the lock to two
     * holders.  Traffic is still encrypted. [0] */
    int tls_insecure;

    /* ---- Sentinel: redis+sentinel:// URLs (README, "Sentinel") ----
     * Credentials for the sentinels themselves when they differ from the
     * URL's (which are the master's): a URL's ?sentinel_user= and
     * ?sentinel_password= win over these.  Copied. [NULL: the URL's] */
    const char *sentinel_user;
    const char *sentinel_password;
} redlock_options;

/*
 * Fill *opts with the defaults shown in brackets above.  NULL is ignored.
 * Thread-safe.
 */
REDLOCK_API void redlock_options_init(redlock_options *opts);

/*
 * Connect to n Redis nodes (1 for a plain single node, an odd N >= 3 for
 * Redlock).  URLs:
 *     redis://[[user][:password]@]host[:port][/db]       host may be [::1]
 *     rediss://...                   the same over TLS (options tls_*)
 *     unix://[[user][:password]@]/path/to/socket[?db=N]
 *     redis+sentinel://[[user][:password]@]host[:port][,host[:port]...]
 *                      /master_name[/db][?sentinel_user=U&sentinel_password=P]
 *     rediss+sentinel://...          the same, sentinels and master over TLS
 *     redis+cluster://[[user][:password]@]host[:port][,host[:port]...][/0]
 *     rediss+cluster://...           the same, every master over TLS
 * user and password are percent-decoded; port is 1..65535 (default 6379,
 * 26379 for a sentinel); db is a non-negative number (default 0; a
 * cluster has only db 0).  AUTH
 * and SELECT run on every new connection, reconnects included.  The URL
 * strings are copied.
 *
 * A Cluster URL is one node made of the cluster's masters: its hosts
 * are seeds, the slot map is read from them (CLUSTER SLOTS), and each
 * command goes to the master of its key's slot; MOVED, ASK, TRYAGAIN and
 * CLUSTERDOWN are followed within the call's bound, and an answer none
 * came for is an uncertain write like any other.  A lock's other keys
 * (fence counter, semaphore slots) are named into its slot: "{<key>}..."
 * for a key without a hash tag (README, "Redis Cluster").  Seeds that are
 * no cluster are REDLOCK_INVALID; none answering, REDLOCK_IO.
 *
 * A Sentinel URL is one node whose address the sentinels give.  The
 * client asks them all at once (SENTINEL GET-MASTER-ADDR-BY-NAME and the
 * master's config epoch, one round trip) and, once a majority of them
 * answered, believes the answer with the highest epoch: the newest view,
 * which a cut-off sentinel cannot outvote.  Fewer than a majority
 * answering is REDLOCK_IO ("only 1 of 3 sentinels answered, 2 needed"):
 * a minority may be cut off from the rest and name an old master.  A
 * stalled sentinel costs the call that finds it out at most a quarter of
 * connect_timeout_ms, then is asked once per node timeout.  It checks
 * with ROLE on every new connection that it reached a master, and asks
 * again after a connection error, a READONLY or MASTERDOWN reply, a
 * connection that reaches a replica, a +switch-master or +promoted-slave
 * message (one sentinel is subscribed to, from a thread of the
 * client's), and every second from that thread, so that it leaves a
 * master the sentinels replaced within about a second of a majority of
 * them knowing it, even when no message comes and the old master still
 * answers; every kept-alive lock is then renewed at once on the new
 * master.  A lock whose key did
 * not reach the promoted replica is found lost by its next renewal
 * (on_lost); with one node it is never written again there (in a quorum,
 * a node that lost the key gets it back only after a quorum confirmed
 * the renewal, as any node does).  Several Sentinel URLs make a Redlock
 * quorum of Sentinel-managed groups.  Asking the sentinels is bounded by
 * connect_timeout_ms and adds that to a call's bound (this one's
 * included) only when the address is in doubt.  A sentinel without a
 * password that answers AUTH with "...without any password configured..."
 * is used as it is; one that refuses the credentials (or wants some) is
 * REDLOCK_AUTH, one whose certificate fails is REDLOCK_TLS.
 *
 * opts may be NULL for the defaults; it is copied.
 *
 * Succeeds when a quorum (n/2 + 1) of the nodes answered; the others are
 * retried on later calls.  The nodes are contacted concurrently, and the
 * call takes at most connect_timeout_ms + io_timeout_ms (name lookup
 * aside): it opens a connection to each node and loads the scripts there.
 *
 * Returns a client the caller owns (free with redlock_client_free()), or
 * NULL with *status (if status is not NULL) set to:
 *   REDLOCK_INVALID  urls NULL, n outside 1..REDLOCK_MAX_NODES, a malformed
 *                    URL (the message says which part), a timeout <= 0, a
 *                    negative count, a drift outside [0, 0.5), fencing
 *                    with n > 1, TLS asked of a build without it
 *                    (REDLOCK_WITH_TLS=OFF), a TLS file that cannot be
 *                    read or used, tls_cert without tls_key (or the
 *                    reverse), a master name that the sentinels that
 *                    answered do not know, seeds that are no cluster, or
 *                    two URLs that name the same server (host and port,
 *                    socket path, a seed or sentinel in common, whatever
 *                    the db: it would vote twice; as written, so a name
 *                    and an address of one host, or its TCP port and its
 *                    socket, are not caught);
 *   REDLOCK_IO       too few nodes reachable within the timeouts (for a
 *                    Sentinel URL: no sentinel answered, or the master it
 *                    named did not);
 *   REDLOCK_AUTH     a node refused the credentials (or wants some);
 *   REDLOCK_TLS      a TLS handshake failed (see REDLOCK_TLS above);
 *   REDLOCK_SERVER   a node refused SELECT or the script load;
 *   REDLOCK_NOMEM.
 * On success *status is REDLOCK_OK.  Thread-safe.
 */
REDLOCK_API redlock_client *redlock_connect(const char *const *urls, size_t n,
                                            const redlock_options *opts,
                                            redlock_status *status);

/*
 * Stop the watchdog, release (best effort) every lock of this client that
 * is still held, free all their handles, close the connections and free
 * the client.  NULL is a no-op.  No other thread may use the client or its
 * locks during or after this call.
 *
 * It takes at most connect_timeout_ms + io_timeout_ms in all, however many
 * locks are left (or node_timeout_ms, if that is longer, while the watchdog
 * finishes a renewal already under way): a node that fails or times out
 * once is not contacted again, and locks not released by then are left to
 * expire with their ttl.
 */
REDLOCK_API void redlock_client_free(redlock_client *c);

/*
 * Take the lock on key with a new random token (128 bits from the system's
 * random source, printed as 36 characters).
 *
 * ttl_ms: 1..REDLOCK_TTL_MAX, and more than its drift allowance
 * (ttl * drift_factor + 2 ms, rounded up), which would leave no validity:
 * 4 ms is the smallest at the default drift.  wait_ms: 0 tries once; > 0
 * retries until that much time has passed; REDLOCK_WAIT_FOREVER retries
 * for as long as it takes.  A wait rides out BUSY and IO (a node down,
 * stalled or restarting, up to the deadline) and returns the last of them
 * when it ends; REDLOCK_AUTH, REDLOCK_INVALID, REDLOCK_SERVER (a key that
 * is not a lock) and REDLOCK_NOMEM end it at once.  Each try is bounded by
 * node_timeout_ms (connect included), whatever N, and a wait returns
 * within wait_ms + node_timeout_ms.
 *
 * On REDLOCK_OK, *lock is a handle the caller owns: end it with
 * redlock_release() or redlock_detach() (or redlock_client_free()).
 * Otherwise *lock is set to NULL.
 *
 * Returns REDLOCK_OK; REDLOCK_BUSY (held elsewhere, also when a quorum
 * answered and a node that answered holds another token; after the wait);
 * REDLOCK_IO; REDLOCK_SERVER (an error reply, or key holds another type);
 * REDLOCK_AUTH; REDLOCK_INVALID (NULL c, key or lock, empty key, ttl or
 * wait out of range); REDLOCK_NOMEM.  A failed attempt deletes its token
 * wherever it may have placed it (on a node that did not answer: at the
 * next contact).  Thread-safe on a shared client.
 *
 * Waiting sleeps, it does not poll.  With one node (and no min_replicas)
 * waiters queue: the failed try takes a place in a list beside the key
 * ("<key>:redlock:q"), and a release hands the lock to the first waiter
 * still connected, in the same atomic step, and wakes that waiter alone;
 * it returns holding the lock without another round trip, its validity
 * counted from the send time of its first try (after a wait longer than a
 * quarter of the ttl, one more try raises the key's ttl first).  So a try
 * (wait_ms 0) right after a release with waiters gets REDLOCK_BUSY; a key
 * freed otherwise (its ttl ran out, a plain SET NX client deleted it) goes
 * to whoever tries first.  A try never queues.  A waiter killed while it
 * waits is skipped; one stopped but still connected is granted the lock,
 * which then expires after that waiter's ttl, and so does a grant to a
 * waiter whose wait ended while its last try failed (counted from the
 * arrival of its last request, if that came later).  With N > 1 waiters
 * wake when a release is published and try again, and a lock released
 * while others wait is handed off to them for 50 ms: during that time a
 * try gets REDLOCK_BUSY, and a waiter gets the lock.  Either way a waiter
 * also wakes when the holder's ttl runs out.
 */
REDLOCK_API redlock_status redlock_acquire(redlock_client *c, const char *key,
                                           int64_t ttl_ms, int64_t wait_ms,
                                           redlock_lock **lock);

/*
 * redlock_acquire() with the caller's token (a non-empty string of at most
 * REDLOCK_TOKEN_MAX bytes, copied; "redlock:handoff" is reserved).
 *
 * The token is the identity of the holder, so two acquires with one token
 * do not exclude each other: when the token holds the key already, the
 * acquire succeeds (a re-acquire) and raises the key's remaining ttl to
 * ttl_ms if it is shorter, never lowering it.  A failed or refused acquire
 * never deletes or shortens a key its token held before it.  Handles of
 * one client with the same key and token are one holder: redlock_release()
 * of one of them deletes the key only when it is the last (the others keep
 * it), and while there are several, extends and renewals only raise the
 * key's ttl (see redlock_extend()).  Across clients (processes) nothing is
 * counted: a release by any holder of the token ends the lock for every
 * holder of it, and an extend to a shorter ttl shortens it for every
 * holder, whose validity then overstates what is left: hand a lock over
 * between processes, do not hold it from two at once.
 *
 * Unlike redlock_acquire()'s own token, a caller's token may be held by
 * another process: an attempt that fails with a node silent leaves the key
 * on that node to expire with its ttl rather than delete it later.  A
 * delete of the token this client gave up on (a release or cleanup that
 * timed out) may still arrive for up to one node timeout: a re-acquire of
 * the token waits that out first (within its wait_ms, else REDLOCK_IO).
 */
REDLOCK_API redlock_status redlock_acquire_as(redlock_client *c,
                                              const char *key,
                                              const char *token,
                                              int64_t ttl_ms, int64_t wait_ms,
                                              redlock_lock **lock);

/*
 * A counting semaphore: a permit to be one of at most n holders of key at
 * a time (across processes and hosts), for ttl_ms, waiting as
 * redlock_acquire() does (wait_ms 0 tries once).
 *
 * A permit is a lock on one of n slots, the keys "<key>:redlock:0" to
 * "<key>:redlock:<n-1>", taken with a new random token: the handle is a
 * lock handle in every way (redlock_keepalive, redlock_extend,
 * redlock_release, redlock_detach, redlock_held, redlock_validity_ms,
 * on_lost), and redlock_key() names its slot.  A holder that crashed
 * frees its slot when its ttl ends; nothing is counted that could leak.
 * Waiting: with one node, waiters queue in "<key>:redlock:sq" and a
 * released slot goes to the first waiter still connected, as a lock does
 * (see redlock_acquire()); with N > 1, waiters wake when any slot's
 * release is published and try again, and each try looks at the slots in
 * turn (up to n round trips).  Every user of a semaphore must pass the same
 * n; n = 1 is exactly redlock_acquire(c, key, ...), a plain lock on key,
 * while a semaphore of n > 1 never touches key itself.  Fencing numbers
 * are not kept for permits (redlock_fence() is 0): holders are concurrent.
 *
 * On REDLOCK_OK *lock is a handle the caller owns, as for
 * redlock_acquire(); otherwise it is NULL.  Returns REDLOCK_OK;
 * REDLOCK_BUSY (all n slots held, after the wait); REDLOCK_IO;
 * REDLOCK_SERVER (an error reply, or a slot or the queue holds another
 * type); REDLOCK_AUTH; REDLOCK_INVALID (as for redlock_acquire(), or n
 * outside 1..REDLOCK_SEMAPHORE_MAX); REDLOCK_NOMEM.  Thread-safe on a
 * shared client.
 */
REDLOCK_API redlock_status redlock_acquire_n(redlock_client *c,
                                             const char *key, int n,
                                             int64_t ttl_ms, int64_t wait_ms,
                                             redlock_lock **lock);

/*
 * A handle for a lock that token holds now, taken elsewhere (for example by
 * `redlock acquire`).  Its validity comes from the key's remaining ttl, and
 * so does the ttl the watchdog renews it with, until redlock_extend() sets
 * another.  On REDLOCK_OK *lock is owned by the caller, as for
 * redlock_acquire(); otherwise it is NULL.
 *
 * The new handle joins the client's handles of that token as described at
 * redlock_acquire_as(), and a delete of the token this client gave up on
 * is waited out first, so that it cannot land after the look.
 *
 * Returns REDLOCK_OK; REDLOCK_NOT_HELD (token does not hold key on a
 * quorum); REDLOCK_IO; REDLOCK_SERVER; REDLOCK_AUTH; REDLOCK_INVALID (NULL
 * or empty argument); REDLOCK_NOMEM.  Thread-safe on a shared client.
 */
REDLOCK_API redlock_status redlock_adopt(redlock_client *c, const char *key,
                                         const char *token,
                                         redlock_lock **lock);

/*
 * Who holds key.  On REDLOCK_OK the holder's token is copied into buf
 * (NUL-terminated; buf may be NULL when len is 0) and its remaining ttl is
 * stored in *pttl_ms (may be NULL; -1 when the key has no expiry).
 *
 * Returns REDLOCK_OK; REDLOCK_NOT_HELD (free: no token holds a quorum);
 * REDLOCK_INVALID (NULL c or key, empty key, or buf too small for the
 * token: nothing is copied, call again with more room); REDLOCK_IO;
 * REDLOCK_SERVER (key of another type); REDLOCK_AUTH; REDLOCK_NOMEM.
 * Thread-safe on a shared client.
 */
REDLOCK_API redlock_status redlock_inspect(redlock_client *c, const char *key,
                                           char *buf, size_t len,
                                           int64_t *pttl_ms);

/*
 * Hand the lock to the client's watchdog thread (started on first use),
 * which extends it every ttl/3 (not more often than renew_floor_ms, never
 * less often than ttl/2) until it is released or detached, max_hold_ms is
 * reached, or it is lost.  A renewal that finds another value or no key
 * on so many nodes that no quorum has our token marks the lock lost at
 * once; I/O failures are retried until the validity runs out.  A node
 * that lost the key while a quorum kept it (it restarted, or was stopped
 * past the ttl) gets it back, at once when it answers again, so that the
 * lock does not rest on a bare quorum.  Loss shows in redlock_held() and redlock_validity_ms() and
 * calls on_lost once.  Calling it again is harmless.
 *
 * Returns REDLOCK_OK; REDLOCK_NOT_HELD (already lost); REDLOCK_INVALID
 * (NULL); REDLOCK_NOMEM (the thread or its heap could not be made).
 */
REDLOCK_API redlock_status redlock_keepalive(redlock_lock *lock);

/*
 * Extend the lock once: if our token still holds the key, its ttl becomes
 * ttl_ms (1..REDLOCK_TTL_MAX, with validity left after the drift
 * allowance, as for redlock_acquire()) on a quorum, and so does the ttl
 * later renewals use, and the validity.  While another handle of this
 * client holds the same key with the same token, the key's ttl is only
 * raised, never lowered (the other handle may count on the longer one);
 * this handle's validity still follows ttl_ms.  The watchdog's renewals
 * follow the same rule.  On REDLOCK_NOT_HELD the lock is marked lost (no
 * on_lost call: the caller learns it here).
 *
 * Returns REDLOCK_OK; REDLOCK_NOT_HELD; REDLOCK_IO (the lock may still be
 * held until its validity ends); REDLOCK_SERVER; REDLOCK_AUTH;
 * REDLOCK_INVALID (NULL lock, ttl out of range or without validity).
 */
REDLOCK_API redlock_status redlock_extend(redlock_lock *lock, int64_t ttl_ms);

/*
 * Stop keeping the lock alive, delete the key on every node where our token
 * still holds it, and free the handle: always, even when an error is
 * returned.  A key that could not be reached is deleted (token-checked) on
 * the next contact with its node.  While another handle of this client
 * holds (or is taking) the same key with the same token, nothing is
 * deleted and REDLOCK_OK is returned: the key is theirs (see
 * redlock_acquire_as()).
 *
 * Returns REDLOCK_OK; REDLOCK_NOT_HELD (our token was already gone: the
 * critical section may have overlapped another holder); REDLOCK_IO;
 * REDLOCK_SERVER; REDLOCK_AUTH; REDLOCK_INVALID (NULL lock).
 */
REDLOCK_API redlock_status redlock_release(redlock_lock *lock);

/*
 * Stop keeping the lock alive and free the handle, leaving the lock in
 * Redis until its ttl ends.  NULL is a no-op.
 */
REDLOCK_API void redlock_detach(redlock_lock *lock);

/*
 * 1 while the lock is believed held; 0 once it is known lost, or for NULL.
 * Any thread may call it.
 */
REDLOCK_API int redlock_held(const redlock_lock *lock);

/*
 * Milliseconds of guaranteed ownership left, by the local monotonic clock
 * (ttl minus the time the last acquire or extend took, minus the drift
 * allowance).  0 when lost, or for NULL.  Any thread may call it.
 */
REDLOCK_API int64_t redlock_validity_ms(const redlock_lock *lock);

/* The lock's token and key: NUL-terminated, owned by the handle, valid
 * until it is freed.  NULL for NULL. */
REDLOCK_API const char *redlock_token(const redlock_lock *lock);
REDLOCK_API const char *redlock_key(const redlock_lock *lock);

/*
 * The fencing number taken with the lock when the client has fencing on:
 * strictly greater than that of every earlier holder of the key, as long
 * as the counter survives (a Sentinel or cluster failover that lost its
 * last increments to asynchronous replication can give a number again;
 * min_replicas narrows that).  0 without fencing, for adopted locks, or
 * for NULL.
 */
REDLOCK_API int64_t redlock_fence(const redlock_lock *lock);

/* One lock found by redlock_list().  Everything it points to lives until
 * the callback returns. */
typedef struct redlock_holder {
    const char *key;   /* NUL-terminated (a key with a NUL byte ends there) */
    const char *token; /* the holder's token: the key's value */
    int64_t pttl_ms;   /* time left; with N > 1 the least a quorum has */
    const char *host;  /* who took it, when the holder recorded it (the
                          holder_info option, the redlock tool): else NULL */
    long pid;          /* its process id there, or 0 */
    int64_t since_ms;  /* when it took the lock, Unix time in ms, or 0 */
} redlock_holder;

/* redlock_list() flag: every string key with a ttl, not only those whose
 * value a holder recorded (plain SET NX locks, but caches too). */
#define REDLOCK_LIST_ALL 1

/*
 * The locks held now whose keys match pattern (a glob, as for SCAN MATCH;
 * NULL or "" for all), for an operator: each node's keyspace is walked
 * with SCAN (never KEYS), and fn(h, arg) is called once per lock held on a
 * quorum of the nodes, until it returns non-zero (which stops the walk).
 * A lock here is a string key with a ttl whose value a holder recorded
 * (holder_info), or with REDLOCK_LIST_ALL any string key with a ttl.  Each
 * round trip is bounded by the connect and I/O timeouts; the whole walk
 * takes as long as the keyspace takes to scan, and is no snapshot: keys
 * that come or go meanwhile may or may not be seen.
 *
 * Returns REDLOCK_OK (also when fn stopped it); REDLOCK_IO (fewer than a
 * quorum of the nodes could be walked); REDLOCK_SERVER (an error reply:
 * SCAN ... TYPE needs Redis 6); REDLOCK_AUTH; REDLOCK_INVALID (NULL c or
 * fn, unknown flags); REDLOCK_NOMEM.  Thread-safe on a shared client; fn
 * runs on the calling thread and must not call redlock_list() itself.
 */
REDLOCK_API redlock_status redlock_list(redlock_client *c,
                                        const char *pattern, int flags,
                                        int (*fn)(const redlock_holder *h,
                                                  void *arg),
                                        void *arg);

/* A fixed English sentence for a status ("unknown status" for others).
 * Never NULL, static storage.  Thread-safe. */
REDLOCK_API const char *redlock_strerror(redlock_status status);

/*
 * The calling thread's last failure in detail (host, port, what Redis
 * said, which argument was wrong), or "" if none.  Thread-local storage,
 * valid until this thread's next libredlock call.  Never a password.
 */
REDLOCK_API const char *redlock_last_error(void);

/* The library's version at run time, "MAJOR.MINOR.PATCH".  Static. */
REDLOCK_API const char *redlock_version(void);

#ifdef __cplusplus
}
#endif

#endif /* REDLOCK_H */
