/*
 * Cluster URLs (redis+cluster://): one quorum member made of many masters.
 *
 * The slot map (slot -> master) is read with CLUSTER SLOTS from the seeds
 * at first, then from the masters it names: when unknown, after a master
 * failed (a connection error or timeout), and after a MOVED, in the same
 * round trip as the redirected command (cluster_io.c), so that a MOVED
 * costs one extra round trip (and the map read's work) and the next
 * command none.  A MOVED also
 * updates its own slot at once.  Masters are redlock__nodes of their own
 * (shards): their pools, slow flags and TLS sessions are per address.
 * Shards are made as addresses appear and kept until the client is freed,
 * since a connection or an exchange may still point at one.
 *
 * Which master answers is Redis Cluster's business: a node that no longer
 * owns a slot says MOVED and applies nothing, so a stale map costs a
 * round trip, never a write in the wrong place.  What the map cannot fix
 * is a failover that promoted a replica which had not received our key:
 * the next renewal finds no key there, and the lock is reported lost.
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SLOTS 16384
#define NO_SHARD 0xFFFF
/* Masters (and seeds) a client keeps track of. */
#define MAX_SHARDS 1024
/* How many known nodes a map refresh asks at once. */
#define ASK_AT_ONCE 3
/* At most one read of a stale map per this long. */
#define MAP_READ_GAP_NS ((int64_t)100 * 1000000)

struct redlock__cluster {
    pthread_mutex_t mu; /* guards owner, shards, nshards, known */
    uint16_t owner[SLOTS];
    redlock__node **shards; /* [0, nseeds) are the URL's seeds */
    int nshards, cap, nseeds;
    int known;              /* a map was read */
    _Atomic int stale;      /* read it again before the next routing */
    _Atomic int want_map;   /* a MOVED was seen: ask CLUSTER SLOTS along */
    /* A stale map is read again no sooner than this (monotonic ns): a
     * stalled master fails every exchange that tries it, the map reads
     * included, and each would ask for another. */
    _Atomic int64_t next_read_ns;
    /* The last shard that answered a map request: asked first. */
    int last_good;
};

/* ---- shards ------------------------------------------------------------ */

static int same_addr(const redlock__node *s, const char *host, int port)
{
    return s->url.port == port && strcmp(s->url.host, host) == 0;
}

/* Called with k->mu held. */
static redlock__node *shard_locked(redlock__node *n, const char *host,
                                   int port)
{
    struct redlock__cluster *k = n->cluster;
    for (int i = 0; i < k->nshards; i++)
        if (same_addr(k->shards[i], host, port))
            return k->shards[i];
    if (k->nshards >= MAX_SHARDS)
        return NULL;
    if (k->nshards == k->cap) {
        int cap = k->cap ? 2 * k->cap : 8;
        redlock__node **grown = realloc(k->shards, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        k->shards = grown;
        k->cap = cap;
    }
    redlock__node *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (redlock__node_init_at(s, n, host, port, n->url.user,
                              n->url.password) != REDLOCK_OK) {
        free(s);
        return NULL;
    }
    s->parent = n;
    s->client = n->client;
    s->tls_ctx = n->tls_ctx;
    snprintf(s->name, sizeof s->name,
             strchr(host, ':') ? "[%.200s]:%d (cluster)" : "%.200s:%d (cluster)",
             host, port);
    k->shards[k->nshards++] = s;
    return s;
}

redlock__node *redlock__cluster_shard(redlock__node *n, const char *host,
                                      int port)
{
    pthread_mutex_lock(&n->cluster->mu);
    redlock__node *s = shard_locked(n, host, port);
    pthread_mutex_unlock(&n->cluster->mu);
    return s;
}

redlock_status redlock__cluster_init(redlock__node *n)
{
    struct redlock__cluster *k = calloc(1, sizeof *k);
    if (!k)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    pthread_mutex_init(&k->mu, NULL);
    for (int i = 0; i < SLOTS; i++)
        k->owner[i] = NO_SHARD;
    n->cluster = k;
    for (int i = 0; i < n->url.nhosts; i++)
        if (!shard_locked(n, n->url.hosts[i], n->url.ports[i])) {
            redlock__cluster_destroy(n);
            return redlock__fail(REDLOCK_NOMEM, "out of memory");
        }
    k->nseeds = k->nshards;
    return REDLOCK_OK;
}

void redlock__cluster_destroy(redlock__node *n)
{
    struct redlock__cluster *k = n->cluster;
    if (!k)
        return;
    for (int i = 0; i < k->nshards; i++) {
        redlock__node_destroy(k->shards[i]);
        free(k->shards[i]);
    }
    free(k->shards);
    pthread_mutex_destroy(&k->mu);
    free(k);
    n->cluster = NULL;
}

void redlock__cluster_attach(redlock__node *n)
{
    struct redlock__cluster *k = n->cluster;
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < k->nshards; i++) {
        k->shards[i]->client = n->client;
        k->shards[i]->tls_ctx = n->tls_ctx;
    }
    pthread_mutex_unlock(&k->mu);
}

/* ---- the map ------------------------------------------------------------ */

/* One master's entry of CLUSTER SLOTS: [host, port, id, ...].  "" means
 * the node that answered (Redis 7 without an announced address); "?" an
 * endpoint it does not know. */
static int entry_addr(const redisReply *m, const redlock__node *asked,
                      const char **host, int *port)
{
    if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
        m->element[0]->type != REDIS_REPLY_STRING ||
        m->element[1]->type != REDIS_REPLY_INTEGER ||
        m->element[1]->integer < 1 || m->element[1]->integer > 65535)
        return -1;
    const char *h = m->element[0]->str;
    size_t len = strlen(h);
    if (strcmp(h, "?") == 0 || len > 255 ||
        strspn(h, "0123456789abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:_") < len)
        return -1;
    *host = h[0] ? h : asked->url.host;
    *port = (int)m->element[1]->integer;
    return 0;
}

int redlock__cluster_map(redlock__node *n, redlock__node *shard,
                         const redisReply *r)
{
    struct redlock__cluster *k = n->cluster;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return -1;
    uint16_t *owner = malloc(sizeof k->owner);
    if (!owner)
        return -1;
    for (int i = 0; i < SLOTS; i++)
        owner[i] = NO_SHARD;
    int rc = 0;
    pthread_mutex_lock(&k->mu);
    for (size_t e = 0; e < r->elements && rc == 0; e++) {
        const redisReply *x = r->element[e];
        const char *host;
        int port;
        if (x->type != REDIS_REPLY_ARRAY || x->elements < 3 ||
            x->element[0]->type != REDIS_REPLY_INTEGER ||
            x->element[1]->type != REDIS_REPLY_INTEGER ||
            x->element[0]->integer < 0 ||
            x->element[1]->integer >= SLOTS ||
            x->element[0]->integer > x->element[1]->integer) {
            rc = -1;
            break;
        }
        if (entry_addr(x->element[2], shard, &host, &port) != 0)
            continue; /* unknown endpoint: those slots stay unknown */
        redlock__node *s = shard_locked(n, host, port);
        if (!s) {
            rc = -1;
            break;
        }
        int idx = 0;
        while (k->shards[idx] != s)
            idx++;
        for (long long i = x->element[0]->integer;
             i <= x->element[1]->integer; i++)
            owner[i] = (uint16_t)idx;
    }
    int changed = 0;
    if (rc == 0) {
        changed = memcmp(k->owner, owner, sizeof k->owner) != 0;
        memcpy(k->owner, owner, sizeof k->owner);
        k->known = 1;
        for (int i = 0; i < k->nshards; i++)
            if (k->shards[i] == shard)
                k->last_good = i;
        atomic_store(&k->stale, 0);
    }
    pthread_mutex_unlock(&k->mu);
    free(owner);
    if (changed && n->client) /* subscriptions follow the slots */
        redlock__notify_moved(n->client);
    return rc;
}

/* A map request is decided by its first good answer. */
static int map_decided(const redlock__batch *b, int n, void *arg)
{
    (void)arg;
    for (int i = 0; i < n; i++)
        if (b[i].st == REDLOCK_OK && b[i].calls[0].reply &&
            b[i].calls[0].reply->type == REDIS_REPLY_ARRAY)
            return 1;
    return 0;
}

/* Ask some of ask[] (a window of ASK_AT_ONCE) for the map at once; the
 * first good answer is installed.  REDLOCK_OK, or the failure with why. */
static redlock_status ask_map(redlock__node *n, redlock__node **ask, int nask,
                              int64_t deadline_ns, char *why, size_t whylen)
{
    redlock__call calls[ASK_AT_ONCE];
    redlock__batch b[ASK_AT_ONCE];
    memset(calls, 0, sizeof calls);
    memset(b, 0, sizeof b);
    for (int i = 0; i < nask; i++) {
        calls[i].argc = 2;
        calls[i].argv[0] = "CLUSTER";
        calls[i].argv[1] = "SLOTS";
        calls[i].argvlen[0] = 7;
        calls[i].argvlen[1] = 5;
        b[i].node = ask[i];
        b[i].calls = &calls[i];
        b[i].ncalls = 1;
    }
    redlock__decider d = {.quorum = 1, .decided = map_decided, .ask_all = 1};
    redlock__exchange_plain(b, nask, deadline_ns, &d);
    redlock_status st = REDLOCK_IO;
    for (int i = 0; i < nask && st != REDLOCK_OK; i++) {
        const redisReply *r = calls[i].reply;
        if (b[i].st != REDLOCK_OK) {
            snprintf(why, whylen, "%s", b[i].err);
            if (b[i].st == REDLOCK_AUTH)
                st = REDLOCK_AUTH;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "%.100s: CLUSTER SLOTS refused: %.150s",
                     ask[i]->name, r->str);
            /* A server without cluster mode: the URL is wrong. */
            if (strstr(r->str, "cluster support disabled"))
                st = REDLOCK_INVALID;
            continue;
        }
        if (redlock__cluster_map(n, ask[i], r) == 0)
            st = REDLOCK_OK;
        else
            snprintf(why, whylen, "%.100s: CLUSTER SLOTS: a malformed answer",
                     ask[i]->name);
    }
    redlock__batches_clear(b, nask);
    return st;
}

redlock_status redlock__cluster_refresh(redlock__node *n, int64_t deadline_ns)
{
    struct redlock__cluster *k = n->cluster;
    enum { MAX_ASK = 64 };
    redlock__node *ask[MAX_ASK];
    int nask = 0;
    /* The one that answered last, then masters of the map, then the other
     * known nodes (seeds), then those that stopped answering lately: a
     * window at a time, until one answers. */
    pthread_mutex_lock(&k->mu);
    if (k->nshards > 0 && !atomic_load(&k->shards[k->last_good]->slow))
        ask[nask++] = k->shards[k->last_good];
    for (int pass = 0; pass < 3 && nask < MAX_ASK; pass++)
        for (int i = 0; i < k->nshards && nask < MAX_ASK; i++) {
            redlock__node *s = k->shards[i];
            int master = 0;
            for (int sl = 0; sl < SLOTS && !master; sl += 64)
                master = k->owner[sl] == i;
            int dup = 0;
            for (int j = 0; j < nask; j++)
                dup |= ask[j] == s;
            int slow = atomic_load(&s->slow);
            if (!dup && (pass == 2 ? slow : !slow && (pass == 1 || master)))
                ask[nask++] = s;
        }
    pthread_mutex_unlock(&k->mu);

    int64_t dl = redlock__now_ns() +
                 ((int64_t)n->opts->connect_timeout_ms + n->opts->io_timeout_ms) *
                     1000000;
    if (dl > deadline_ns)
        dl = deadline_ns;
    redlock_status st = REDLOCK_IO;
    char why[300] = "no seed or master answered";
    for (int at = 0; at < nask && st != REDLOCK_OK && st != REDLOCK_INVALID &&
                     redlock__now_ns() < dl;
         at += ASK_AT_ONCE) {
        int w = nask - at < ASK_AT_ONCE ? nask - at : ASK_AT_ONCE;
        redlock_status s = ask_map(n, ask + at, w, dl, why, sizeof why);
        if (s == REDLOCK_OK || s == REDLOCK_INVALID || st != REDLOCK_AUTH)
            st = s;
    }
    if (st != REDLOCK_OK)
        return redlock__fail(st, "%s: cannot read the slot map: %s", n->name,
                             why);
    /* A node asked and given up on marked the map stale as it went back
     * (node_put): that is no news once the map is read. */
    atomic_store(&k->stale, 0);
    return REDLOCK_OK;
}

redlock__node *redlock__cluster_route(redlock__node *n, unsigned slot,
                                      int64_t deadline_ns, redlock_status *st)
{
    struct redlock__cluster *k = n->cluster;
    int64_t now = redlock__now_ns(), at = atomic_load(&k->next_read_ns);
    /* A stale map is read again by one thread at a time, at most every
     * MAP_READ_GAP_NS; the others route by the old one meanwhile. */
    int read = atomic_load(&k->stale) && now >= at &&
               atomic_compare_exchange_strong(&k->next_read_ns, &at,
                                              now + MAP_READ_GAP_NS);
    pthread_mutex_lock(&k->mu);
    redlock__node *s = k->known && k->owner[slot % SLOTS] != NO_SHARD
                           ? k->shards[k->owner[slot % SLOTS]]
                           : NULL;
    int known = k->known;
    pthread_mutex_unlock(&k->mu);
    if (!read && known) {
        if (s)
            return s;
    } else {
        /* Keep the old map when the read fails: a refresh that failed is
         * no reason to stop routing by it. */
        redlock_status rs = redlock__cluster_refresh(n, deadline_ns);
        if (rs != REDLOCK_OK && !known) {
            *st = rs;
            return NULL;
        }
        if (rs == REDLOCK_OK)
            s = redlock__cluster_lookup(n, slot);
        if (s)
            return s;
    }
    atomic_store(&k->stale, 1);
    *st = redlock__fail(REDLOCK_IO,
                        "%s: slot %u has no master (the cluster is down or "
                        "being resharded)",
                        n->name, slot);
    return NULL;
}

redlock__node *redlock__cluster_lookup(redlock__node *n, unsigned slot)
{
    struct redlock__cluster *k = n->cluster;
    pthread_mutex_lock(&k->mu);
    redlock__node *s = k->owner[slot % SLOTS] == NO_SHARD
                           ? NULL
                           : k->shards[k->owner[slot % SLOTS]];
    pthread_mutex_unlock(&k->mu);
    return s;
}

redlock__node *redlock__cluster_any(redlock__node *n, int64_t deadline_ns,
                                    redlock_status *st)
{
    struct redlock__cluster *k = n->cluster;
    redlock__node *s = NULL;
    pthread_mutex_lock(&k->mu);
    int known = k->known;
    pthread_mutex_unlock(&k->mu);
    if (!known) {
        if ((*st = redlock__cluster_refresh(n, deadline_ns)) != REDLOCK_OK)
            return NULL;
    }
    pthread_mutex_lock(&k->mu);
    for (int sl = 0; sl < SLOTS && !s; sl++)
        if (k->owner[sl] != NO_SHARD &&
            !atomic_load(&k->shards[k->owner[sl]]->slow))
            s = k->shards[k->owner[sl]];
    if (!s && k->owner[0] != NO_SHARD)
        s = k->shards[k->owner[0]];
    pthread_mutex_unlock(&k->mu);
    if (!s)
        *st = redlock__fail(REDLOCK_IO, "%s: no master is known", n->name);
    return s;
}

int redlock__cluster_masters(redlock__node *n, redlock__node **out, int max,
                             int64_t deadline_ns, redlock_status *st)
{
    struct redlock__cluster *k = n->cluster;
    pthread_mutex_lock(&k->mu);
    int known = k->known;
    pthread_mutex_unlock(&k->mu);
    if ((!known || atomic_load(&k->stale)) &&
        (*st = redlock__cluster_refresh(n, deadline_ns)) != REDLOCK_OK &&
        !known)
        return -1;
    int count = 0;
    pthread_mutex_lock(&k->mu);
    for (int sl = 0; sl < SLOTS; sl++) {
        if (k->owner[sl] == NO_SHARD)
            continue;
        redlock__node *s = k->shards[k->owner[sl]];
        int dup = 0;
        for (int i = 0; i < count && !dup; i++)
            dup = out[i] == s;
        if (!dup && count < max)
            out[count++] = s;
    }
    pthread_mutex_unlock(&k->mu);
    return count;
}

redlock__node *redlock__cluster_moved(redlock__node *n, unsigned slot,
                                      const char *host, int port)
{
    struct redlock__cluster *k = n->cluster;
    pthread_mutex_lock(&k->mu);
    redlock__node *s = shard_locked(n, host, port);
    if (s) {
        for (int i = 0; i < k->nshards; i++)
            if (k->shards[i] == s)
                k->owner[slot % SLOTS] = (uint16_t)i;
    }
    pthread_mutex_unlock(&k->mu);
    atomic_store(&k->want_map, 1);
    if (n->client)
        redlock__notify_moved(n->client);
    return s;
}

void redlock__cluster_stale(redlock__node *n)
{
    if (n && n->cluster)
        atomic_store(&n->cluster->stale, 1);
}

int redlock__cluster_want_map(redlock__node *n)
{
    return atomic_exchange(&n->cluster->want_map, 0);
}

int redlock__cluster_owns(const redlock__node *shard, const char *key,
                          size_t keylen)
{
    struct redlock__cluster *k = shard->parent->cluster;
    unsigned slot = redlock__key_slot(key, keylen);
    pthread_mutex_lock(&k->mu);
    int own = k->owner[slot] != NO_SHARD && k->shards[k->owner[slot]] == shard;
    pthread_mutex_unlock(&k->mu);
    return own;
}

/* ---- which slot a call goes to ----------------------------------------- */

static int is_cmd(const redlock__call *c, const char *name)
{
    size_t len = strlen(name);
    return c->argvlen[0] == len && strncasecmp(c->argv[0], name, len) == 0;
}

int redlock__call_slot(const redlock__call *c)
{
    if (c->script) {
        if (c->script->numkeys > 0 && c->argc > 0)
            return (int)redlock__key_slot(c->argv[0], c->argvlen[0]);
        if (c->xkeys > 0)
            return (int)redlock__key_slot(c->xargv[0], c->xargvlen[0]);
        return -1;
    }
    static const char *const keyless[] = {"WAIT",   "PUBSUB", "PING",
                                          "ROLE",   "INFO",   "SCAN",
                                          "ASKING", "CLUSTER", "SCRIPT",
                                          "TIME",   "DBSIZE"};
    if (c->argc < 2)
        return -1;
    for (size_t i = 0; i < sizeof keyless / sizeof keyless[0]; i++)
        if (is_cmd(c, keyless[i]))
            return -1;
    return (int)redlock__key_slot(c->argv[1], c->argvlen[1]);
}

/* ---- the names of a lock's other keys ---------------------------------- */

/* A suffix, not a prefix: ACL key patterns are prefixes ("~locks:*").
 * Braces only where a cluster needs them, so that names on single nodes
 * are those of earlier versions (a fence counter under a new name would
 * start again at 1). */
size_t redlock__derived_name(const redlock_client *c, const char *key,
                             size_t keylen, const char *suffix, char *out)
{
    size_t slen = strlen(suffix);
    if (c->cluster_names && redlock__cluster_name_ok(key, keylen))
        return redlock__cluster_name(key, keylen, suffix, out);
    memcpy(out, key, keylen);
    memcpy(out + keylen, suffix, slen);
    return keylen + slen;
}

redlock_status redlock__check_derived(const redlock_client *c,
                                      const char *key, size_t keylen)
{
    if (!c->cluster_names || redlock__cluster_name_ok(key, keylen))
        return REDLOCK_OK;
    return redlock__fail(REDLOCK_INVALID,
                         "key \"%.80s\": on a cluster, a lock's release "
                         "channel, fence counter and semaphore slots must "
                         "share its slot, and a key with a '}' but no hash "
                         "tag gives them none: add a hash tag "
                         "(\"{name}...\")",
                         key);
}
