/*
 * Sentinel URLs: a node whose address the sentinels give.
 *
 * The sentinels are asked with the library's own connections and I/O
 * (each sentinel is a redlock__node of its own), so that every step is
 * bounded by the timeouts and TLS applies to them as to any node.  The
 * address is asked for lazily, before a new connection, whenever it is
 * unknown or stale: after a connection error or timeout, a READONLY or
 * MASTERDOWN reply, a ROLE that is not "master" (every new connection
 * asks it, in the handshake's round trip); and by the watcher
 * (sentinel_watch.c) every second and on +switch-master.  Sentinels
 * disagree at times: the answer with the highest config epoch wins.
 * A new address bumps the node's generation, and connections of an older
 * one are closed rather than reused (node.c).
 *
 * Nothing here re-creates a lock: a failover that lost a key is seen by
 * the next renewal as "no key", which is a loss (lock.c).
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct redlock__sentinel {
    pthread_mutex_t mu; /* guards order, host, port, known */
    int npeers;
    redlock__node peers[REDLOCK__MAX_SENTINELS];
    int order[REDLOCK__MAX_SENTINELS]; /* the one that answered first */
    char host[256];
    int port;
    int known;
    _Atomic int stale;
};

/* A sentinel's node, set up exactly as any node is (TLS included). */
static redlock_status peer_init(redlock__node *peer, const redlock__node *n,
                                int i, const char *user, const char *pw)
{
    redlock_status st = redlock__node_init_at(peer, n, n->url.hosts[i],
                                              n->url.ports[i], user, pw);
    if (st == REDLOCK_OK)
        peer->is_sentinel = 1;
    return st;
}

redlock_status redlock__sentinel_init(redlock__node *n)
{
    struct redlock__sentinel *s = calloc(1, sizeof *s);
    if (!s)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    /* The sentinels' credentials: the query's, else the options', else the
     * URL's own (a pair, never mixed). */
    const redlock__url *u = &n->url;
    const char *user = u->user, *pw = u->password;
    if (u->sentinel_user || u->sentinel_password) {
        user = u->sentinel_user;
        pw = u->sentinel_password;
    } else if (n->opts->sentinel_user || n->opts->sentinel_password) {
        user = n->opts->sentinel_user;
        pw = n->opts->sentinel_password;
    }
    pthread_mutex_init(&s->mu, NULL);
    for (int i = 0; i < u->nhosts; i++) {
        redlock_status st = peer_init(&s->peers[i], n, i, user, pw);
        if (st != REDLOCK_OK) {
            n->sentinel = s;
            redlock__sentinel_destroy(n);
            return st;
        }
        s->order[i] = i;
        s->npeers++;
    }
    n->sentinel = s;
    return REDLOCK_OK;
}

void redlock__sentinel_destroy(redlock__node *n)
{
    struct redlock__sentinel *s = n->sentinel;
    if (!s)
        return;
    for (int i = 0; i < s->npeers; i++)
        redlock__node_destroy(&s->peers[i]);
    pthread_mutex_destroy(&s->mu);
    free(s);
    n->sentinel = NULL;
}

void redlock__sentinel_use_tls(redlock__node *n, struct ssl_ctx_st *ctx)
{
    n->tls_ctx = ctx;
    for (int i = 0; n->sentinel && i < n->sentinel->npeers; i++)
        n->sentinel->peers[i].tls_ctx = ctx;
}

void redlock__sentinel_stale(redlock__node *n)
{
    if (n->sentinel)
        atomic_store(&n->sentinel->stale, 1);
}

/* The reply of GET-MASTER-ADDR-BY-NAME: [host, port]; 1 when it is one. */
static int addr_reply(const redisReply *r, const char **host, int *port)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[0]->len == 0 || r->element[0]->len >= 256)
        return 0;
    char *end;
    long p = strtol(r->element[1]->str, &end, 10);
    if (*end || p < 1 || p > 65535)
        return 0;
    *host = r->element[0]->str;
    *port = (int)p;
    return 1;
}

/* The config-epoch field of a SENTINEL MASTER reply (a flat list of
 * field/value pairs): how new that sentinel's view of the master is. 0
 * when absent (an ACL may refuse the command: the address still counts). */
static unsigned long long config_epoch(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, "config-epoch") == 0)
            return strtoull(v->str, NULL, 10);
    }
    return 0;
}

/* Any majority of the sentinels has answered: enough to judge, without
 * waiting for a stalled one (io.c still gives the others a grace). */
static int majority_answered(const redlock__batch *b, int n, void *arg)
{
    (void)b;
    (void)n;
    (void)arg;
    return 1;
}

/* Which answer to believe.  Sentinels can disagree: during a failover
 * the leader names the promoted replica before the others have heard of
 * it, and a sentinel cut off (or stalled) keeps naming the old master,
 * which may still take writes.  A failover raises the master's config
 * epoch, so the answer with the highest epoch is the newest; among equal
 * epochs the address most of them name, then the first in the order (the
 * sentinel-clients guideline's choice).  Returns the batch index or -1. */
static int newest_answer(const redlock__batch *b, redlock__call (*calls)[2],
                         int k)
{
    int best = -1, best_votes = 0;
    unsigned long long best_epoch = 0;
    for (int i = 0; i < k; i++) {
        const char *h;
        int p;
        if (b[i].st != REDLOCK_OK || !addr_reply(calls[i][0].reply, &h, &p))
            continue;
        unsigned long long e = config_epoch(calls[i][1].reply);
        int votes = 0;
        for (int j = 0; j < k; j++) {
            const char *hj;
            int pj;
            if (b[j].st == REDLOCK_OK && addr_reply(calls[j][0].reply, &hj, &pj) &&
                pj == p && strcmp(hj, h) == 0 &&
                config_epoch(calls[j][1].reply) == e)
                votes++;
        }
        if (best < 0 || e > best_epoch || (e == best_epoch && votes > best_votes)) {
            best = i;
            best_epoch = e;
            best_votes = votes;
        }
    }
    return best;
}

/* Ask every sentinel at once for the master's address and its config
 * epoch (one round trip), judge once a majority answered (or all the
 * reachable ones by the connect timeout), and keep the newest answer;
 * the sentinel that gave it moves to the front. */
redlock_status redlock__sentinel_resolve(redlock__node *n)
{
    struct redlock__sentinel *s = n->sentinel;
    redlock__call calls[REDLOCK__MAX_SENTINELS][2];
    redlock__batch b[REDLOCK__MAX_SENTINELS];
    int order[REDLOCK__MAX_SENTINELS];
    int k = s->npeers;
    memset(calls, 0, sizeof calls);
    memset(b, 0, sizeof b);
    pthread_mutex_lock(&s->mu);
    memcpy(order, s->order, sizeof order);
    pthread_mutex_unlock(&s->mu);
    static const char *const ask[2] = {"GET-MASTER-ADDR-BY-NAME", "MASTER"};
    for (int i = 0; i < k; i++) {
        for (int q = 0; q < 2; q++) {
            redlock__call *cl = &calls[i][q];
            cl->argc = 3;
            cl->argv[0] = "SENTINEL";
            cl->argv[1] = ask[q];
            cl->argv[2] = n->url.master;
            for (int a = 0; a < 3; a++)
                cl->argvlen[a] = strlen(cl->argv[a]);
        }
        b[i].node = &s->peers[order[i]];
        b[i].calls = calls[i];
        b[i].ncalls = 2;
    }
    redlock__decider d = {k / 2 + 1, majority_answered, NULL, 1};
    redlock__exchange_until(
        b, k, redlock__now_ns() + (int64_t)n->opts->connect_timeout_ms * 1000000,
        &d);

    /* A majority must have answered (an address, or that they know no
     * such master): fewer may all be sentinels cut off from the rest,
     * naming an old master that still takes writes, whose word alone would
     * make a second holder there. */
    int answered = 0;
    for (int i = 0; i < k; i++)
        answered += b[i].st == REDLOCK_OK;
    int found = answered > k / 2 ? newest_answer(b, calls, k) : -1, nil = 0;
    redlock_status worst = REDLOCK_IO;
    if (found >= 0) {
        const char *h;
        int p;
        addr_reply(calls[found][0].reply, &h, &p);
        pthread_mutex_lock(&s->mu);
        int moved = !s->known || s->port != p || strcmp(s->host, h) != 0;
        snprintf(s->host, sizeof s->host, "%s", h);
        s->port = p;
        s->known = 1;
        for (int j = 0; j < k; j++) /* order[found] to the front */
            if (s->order[j] == order[found]) {
                memmove(&s->order[1], &s->order[0], (size_t)j * sizeof(int));
                s->order[0] = order[found];
                break;
            }
        if (moved)
            atomic_fetch_add(&n->gen, 1);
        pthread_mutex_unlock(&s->mu);
        redlock__batches_clear(b, k);
        if (moved && n->client) {
            redlock__notify_moved(n->client);
            /* Renew every kept-alive lock now, on the new master: one
             * whose key did not make it there is found lost at once, not
             * a renewal interval later. */
            redlock__watchdog_node_back(n->client);
        }
        return REDLOCK_OK;
    }
    char why[400] = "";
    size_t o = 0;
    for (int i = 0; i < k; i++) {
        const redisReply *r = calls[i][0].reply;
        char one[200];
        redlock_status st = b[i].st;
        if (st == REDLOCK_OK && r && r->type == REDIS_REPLY_NIL) {
            nil = 1;
            continue;
        }
        if (st != REDLOCK_OK) {
            snprintf(one, sizeof one, "%.190s", b[i].err);
        } else {
            st = r && r->type == REDIS_REPLY_ERROR
                     ? redlock__reply_error_status(r)
                     : REDLOCK_SERVER;
            snprintf(one, sizeof one, "%.100s: %.90s", b[i].node->name,
                     r && r->type == REDIS_REPLY_ERROR ? r->str
                                                       : "an unexpected reply");
        }
        /* A refusal no wait will cure (credentials, certificates) says
         * more than an unreachable sentinel beside it. */
        if (st == REDLOCK_AUTH || (st == REDLOCK_TLS && worst != REDLOCK_AUTH))
            worst = st;
        if (o < sizeof why)
            o += (size_t)snprintf(why + o, sizeof why - o, "%s%s",
                                  o ? "; " : "", one);
    }
    redlock__batches_clear(b, k);
    if (answered > 0 && answered <= k / 2)
        return redlock__fail(worst,
                             "%s: only %d of %d sentinels answered, %d "
                             "needed (%s)",
                             n->name, answered, k, k / 2 + 1, why);
    if (nil)
        return redlock__fail(REDLOCK_INVALID,
                             "%s: no sentinel knows a master named \"%s\"%s%s%s",
                             n->name, n->url.master, o ? " (others: " : "",
                             o ? why : "", o ? ")" : "");
    return redlock__fail(worst, "%s: no sentinel answered (%s)", n->name, why);
}

int redlock__node_where(redlock__node *n, redlock__url *where, char *host,
                        size_t hostlen, uint64_t *gen, redlock_status *st)
{
    struct redlock__sentinel *s = n->sentinel;
    *where = n->url;
    if (!s) {
        *gen = atomic_load(&n->gen);
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    int ask = !s->known || atomic_exchange(&s->stale, 0);
    pthread_mutex_unlock(&s->mu);
    if (ask && (*st = redlock__sentinel_resolve(n)) != REDLOCK_OK) {
        atomic_store(&s->stale, 1);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    snprintf(host, hostlen, "%s", s->host);
    where->port = s->port;
    *gen = atomic_load(&n->gen);
    pthread_mutex_unlock(&s->mu);
    where->host = host;
    where->sentinel = 0;
    where->nhosts = 0;
    return 0;
}

redlock_status redlock__sentinel_prefix(redlock__node *n, const redisReply *r,
                                        int is_role, char *msg, size_t len)
{
    if (!is_role) {
        /* A sentinel without requirepass, given the master's password:
         * nothing to check, so it answers. */
        if (n->is_sentinel && strstr(r->str, "without any password"))
            return REDLOCK_OK;
        snprintf(msg, len, "AUTH refused: %.100s", r->str);
        return REDLOCK_AUTH;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(msg, len, "ROLE refused (a Sentinel URL's user needs it): "
                           "%.100s", r->str);
        return redlock__reply_error_status(r);
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[0]->str, "master") == 0)
        return REDLOCK_OK;
    struct redlock__sentinel *s = n->sentinel;
    pthread_mutex_lock(&s->mu);
    snprintf(msg, len, "%s%s%s:%d is a replica now (a failover is under way)",
             strchr(s->host, ':') ? "[" : "", s->host,
             strchr(s->host, ':') ? "]" : "", s->port);
    pthread_mutex_unlock(&s->mu);
    atomic_store(&s->stale, 1);
    return REDLOCK_IO;
}

int redlock__sentinel_moved(redlock__node *n, const redisReply *r)
{
    if (!n->sentinel || r->type != REDIS_REPLY_ERROR ||
        (strncmp(r->str, "READONLY", 8) != 0 &&
         strncmp(r->str, "MASTERDOWN", 10) != 0))
        return 0;
    atomic_store(&n->sentinel->stale, 1);
    return 1;
}

redlock__node *redlock__sentinel_peer(redlock__node *n, unsigned k)
{
    struct redlock__sentinel *s = n->sentinel;
    return &s->peers[k % (unsigned)s->npeers];
}
