/*
 * One Redis node: its pool of connections, opening them (AUTH and SELECT on
 * every new one), and the ghost tokens still to delete there.
 *
 * A connection is used by one thread at a time: taken from the pool,
 * returned after a complete exchange.  A connection that failed or timed out
 * is never reused: a late reply would be read as the answer to the next
 * command.  hiredis's redisReconnect is never called (it double-closes a
 * descriptor on a failed lookup and drops the timeout); we open anew.
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <fcntl.h>
#include <unistd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Idle connections kept per node; threads beyond it open their own and
 * close them afterwards. */
#define POOL_CAP 16
/* Ghost tokens remembered per node; beyond it the oldest are forgotten
 * (they still expire with their ttl). */
#define GHOST_CAP 1024

redlock_status redlock__node_init(redlock__node *n, const char *url,
                                  const redlock_options *opts)
{
    memset(n, 0, sizeof *n);
    redlock_status st = redlock__url_parse(url, &n->url);
    if (st != REDLOCK_OK)
        return st;
#ifndef REDLOCK_WITH_TLS
    if (n->url.tls || (opts->tls && !n->url.is_unix)) {
        redlock__url_clear(&n->url);
        return redlock__fail(REDLOCK_INVALID,
                             "TLS (rediss://, or the tls option) is not in "
                             "this build of libredlock (REDLOCK_WITH_TLS "
                             "was OFF or OpenSSL was not found)");
    }
#endif
    redlock__url_describe(&n->url, n->name, sizeof n->name);
    n->opts = opts;
    /* A quarter of the node's budget, at most 100 ms (the one-node path
     * blocks in recv() only while a whole slice is left). */
    int budget = opts->node_timeout_ms ? opts->node_timeout_ms
                                       : opts->io_timeout_ms;
    n->recv_slice_ms = budget / 4 > 100 ? 100 : budget / 4 < 1 ? 1 : budget / 4;
    n->idle = calloc(POOL_CAP, sizeof *n->idle);
    if (!n->idle) {
        redlock__url_clear(&n->url);
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    }
    n->idle_cap = POOL_CAP;
    pthread_mutex_init(&n->mu, NULL);
    redlock__cond_init_monotonic(&n->settled);
    if (n->url.sentinel && (st = redlock__sentinel_init(n)) != REDLOCK_OK) {
        redlock__node_destroy(n);
        return st;
    }
    if (n->url.cluster && (st = redlock__cluster_init(n)) != REDLOCK_OK) {
        redlock__node_destroy(n);
        return st;
    }
    return REDLOCK_OK;
}

static int unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
           ch == '~';
}

static void put_encoded(redlock__buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (unreserved(ch)) {
            b->data[b->len++] = (char)ch;
        } else {
            b->data[b->len++] = '%';
            b->data[b->len++] = hex[ch >> 4];
            b->data[b->len++] = hex[ch & 15];
        }
    }
}

/* From a URL we write (credentials percent-encoded), so that the node is
 * set up exactly as any node is, TLS included. */
redlock_status redlock__node_init_at(redlock__node *peer,
                                     const redlock__node *n, const char *host,
                                     int port, const char *user,
                                     const char *pw)
{
    size_t cap = 64 + strlen(host) +
                 3 * ((user ? strlen(user) : 0) + (pw ? strlen(pw) : 0));
    redlock__buf b = {malloc(cap), 0, cap};
    if (!b.data)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    b.len = (size_t)snprintf(b.data, cap, "%s://",
                             n->url.tls ? "rediss" : "redis");
    if (user || pw) {
        if (user)
            put_encoded(&b, user);
        if (pw) {
            b.data[b.len++] = ':';
            put_encoded(&b, pw);
        }
        b.data[b.len++] = '@';
    }
    snprintf(b.data + b.len, cap - b.len,
             strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    redlock_status st = redlock__node_init(peer, b.data, n->opts);
    memset(b.data, 0, cap); /* it held the password */
    free(b.data);
    return st;
}

static void ghost_free(redlock__ghost *g)
{
    free(g->key);
    free(g->token);
    free(g);
}

static void free_ghosts(redlock__ghost *g)
{
    while (g) {
        redlock__ghost *next = g->next;
        ghost_free(g);
        g = next;
    }
}

/* Cut the list (newest first) to GHOST_CAP; returns the cut-off tail for
 * the caller to free outside the mutex.  Forgotten ghosts still expire
 * with their ttl. */
static redlock__ghost *trim_ghosts(redlock__node *n)
{
    if (n->nghosts <= GHOST_CAP)
        return NULL;
    redlock__ghost *g = n->ghosts;
    for (int i = 1; i < GHOST_CAP; i++)
        g = g->next;
    redlock__ghost *drop = g->next;
    g->next = NULL;
    n->nghosts = GHOST_CAP;
    return drop;
}

void redlock__node_destroy(redlock__node *n)
{
    if (!n->idle)
        return;
    redlock__sentinel_destroy(n);
    redlock__cluster_destroy(n);
    for (int i = 0; i < n->nidle; i++)
        redlock__conn_free(n->idle[i]);
    free(n->idle);
    n->idle = NULL;
    free_ghosts(n->ghosts);
    n->ghosts = NULL;
    free_ghosts(n->flying);
    n->flying = NULL;
    redlock__tls_node_clear(n);
    pthread_cond_destroy(&n->settled);
    pthread_mutex_destroy(&n->mu);
    redlock__url_clear(&n->url);
}

void redlock__conn_free(redlock__conn *c)
{
    if (!c)
        return;
    if (c->ssl)
        redlock__tls_free(c);
    free(c->tls_name); /* set before a failed TLS start, too */
    if (c->ctx)
        redisFree(c->ctx);
    redlock__buf_free(&c->out);
    free(c);
}


static int append(redlock__conn *c, int argc, const char **argv)
{
    size_t len[4];
    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    return redlock__resp_append(&c->out, argc, argv, len);
}

/* Queue AUTH and SELECT ahead of everything else on a new connection: they
 * share the first round trip with the caller's commands. */
static int queue_handshake(redlock__node *n, redlock__conn *c)
{
    const redlock__url *u = &n->url;
    if (u->password || u->user) {
        /* A user without a password is an ACL "nopass" user: any
         * password is accepted, so send an empty one. */
        const char *pw = u->password ? u->password : "";
        const char *argv[] = {"AUTH", u->user ? u->user : pw, pw};
        if (append(c, u->user ? 3 : 2, argv) != 0)
            return -1;
        c->prefix.auth = 1;
        c->prefix.count++;
    }
    if (u->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", u->db);
        const char *argv[] = {"SELECT", db};
        if (append(c, 2, argv) != 0)
            return -1;
        c->prefix.select = 1;
        c->prefix.count++;
    }
    if (n->sentinel) { /* did the sentinels name a master? (sentinel.c) */
        const char *argv[] = {"ROLE"};
        if (append(c, 1, argv) != 0)
            return -1;
        c->prefix.role = 1;
        c->prefix.count++;
    }
    return 0;
}

/* Start a connection without waiting for it: connect() completes (or
 * fails) inside the exchange's poll(), concurrently with other nodes. */
redlock__conn *redlock__node_connect(redlock__node *n, redlock_status *st)
{
    if (n->cluster) { /* a keyless connection (a subscriber's): any master */
        n = redlock__cluster_any(
            n, redlock__now_ns() + (int64_t)n->opts->connect_timeout_ms * 1000000,
            st);
        if (!n)
            return NULL;
    }
    redlock__conn *c = calloc(1, sizeof *c);
    if (!c) {
        *st = redlock__fail(REDLOCK_NOMEM, "out of memory");
        return NULL;
    }
    char err[160], host[256];
    redlock__url where;
    if (redlock__node_where(n, &where, host, sizeof host, &c->gen, st) != 0) {
        free(c);
        return NULL;
    }
    int fd = redlock__sock_open(&where, err, sizeof err);
    if (fd < 0) {
        free(c);
        *st = redlock__fail(REDLOCK_IO, "%s: cannot connect: %s", n->name,
                            err);
        return NULL;
    }
    c->ctx = redisConnectFd(fd);
    if (!c->ctx) {
        close(fd);
        free(c);
        *st = redlock__fail(REDLOCK_NOMEM, "out of memory");
        return NULL;
    }
    /* hiredis marks a wrapped descriptor blocking and connected; ours is
     * neither yet (see io.c: connect_done). */
    c->ctx->flags &= ~REDIS_BLOCK;
    c->node = n;
    redlock__reply_setup(c);
    c->connecting = 1;
    redlock_status tst;
    if (n->tls_ctx &&
        (tst = redlock__tls_start(n, c, where.host)) != REDLOCK_OK) {
        redlock__conn_free(c);
        *st = tst;
        return NULL;
    }
    c->connect_deadline_ns =
        redlock__now_ns() + (int64_t)n->opts->connect_timeout_ms * 1000000;
    if (queue_handshake(n, c) != 0) {
        redlock__conn_free(c);
        *st = redlock__fail(REDLOCK_NOMEM, "out of memory");
        return NULL;
    }
    return c;
}

/* An idle Redis connection has nothing to read: if its socket is readable,
 * the server closed it (restart, CLIENT KILL, timeout) or it is out of
 * step.  Finding that out now costs one poll() (about 0.4 us here) and
 * saves the caller an error for a connection that died while idle.  It is
 * done even for a connection used a moment ago: a CLIENT KILL takes less
 * than a millisecond on loopback. */
static int idle_conn_alive(redlock__conn *c)
{
    struct pollfd p = {.fd = c->ctx->fd, .events = POLLIN};
    if (poll(&p, 1, 0) == 0)
        return 1;
    if (!c->ssl)
        return 0;
    /* TLS: what came may be no data (a session ticket, a key update):
     * alive if reading yields nothing. */
    char byte;
    return redlock__tls_read(c, &byte, 1) == 0 && !redlock__tls_pending(c);
}

/* Queue the token-checked deletes of the node's ghosts on c.  EVAL rather
 * than EVALSHA: rare, and it must not depend on the script cache.  They
 * move to the flying list, carried by c, under the same mutex a claimer
 * takes: a ghost is always either pending (cancellable) or visibly in
 * flight (waited for), never neither.  (model rules ghost_delete, watchdog_round) */
static void queue_ghosts(redlock__node *n, redlock__conn *c)
{
    /* A cluster's master carries the ghosts its slots hold. */
    redlock__node *gn = n->parent ? n->parent : n;
    pthread_mutex_lock(&gn->mu);
    size_t mark = c->out.len;
    int count = 0, oom = 0;
    redlock__ghost *g;
    /* With the queue a ghost delete hands the lock on, like a release. */
    const redlock_client *cl = gn->client;
    int queued = cl && cl->queued;
    int fenced = queued && n->opts->fencing;
    for (g = gn->ghosts; g && !oom; g = g->next) {
        if (n->parent && !redlock__cluster_owns(n, g->key, g->keylen))
            continue;
        /* EVAL release 1|2|3 key [queue [fence]] token handoff-ms 0
         * [shard channel: a cluster's] */
        char *names = NULL, *sch = NULL;
        const char *argv[10] = {"EVAL", redlock__script_release.body,
                                fenced ? "3" : queued ? "2" : "1", g->key};
        size_t len[10] = {4, strlen(redlock__script_release.body), 1,
                          g->keylen};
        int k = 4;
        if (queued) {
            names = malloc(2 * (g->keylen + REDLOCK__NAME_EXTRA));
            if (!names) {
                oom = 1;
                break;
            }
            len[k] = redlock__derived_name(cl, g->key, g->keylen,
                                           REDLOCK__QUEUE_SUFFIX, names);
            argv[k] = names;
            if (fenced) {
                k++;
                argv[k] = names + len[k - 1];
                len[k] = redlock__derived_name(cl, g->key, g->keylen,
                                               REDLOCK__FENCE_SUFFIX,
                                               names + len[k - 1]);
            }
            k++;
        }
        argv[k] = g->token;
        len[k++] = strlen(g->token);
        argv[k] = REDLOCK__HANDOFF_MS;
        len[k++] = strlen(REDLOCK__HANDOFF_MS);
        argv[k] = "0";
        len[k++] = 1;
        if (n->parent) {
            if (!(sch = malloc(g->keylen + REDLOCK__SCHAN_EXTRA))) {
                free(names);
                oom = 1;
                break;
            }
            argv[k] = sch;
            len[k++] = redlock__release_channel(g->key, g->keylen, sch);
        }
        int rc = redlock__resp_append(&c->out, k, argv, len);
        free(names);
        free(sch);
        if (rc != 0)
            oom = 1;
        else
            g->carrier = c; /* marked; moved below */
        count += !oom;
    }
    if (oom) { /* keep them all for later */
        c->out.len = mark;
        for (g = gn->ghosts; g; g = g->next)
            g->carrier = NULL;
        pthread_mutex_unlock(&gn->mu);
        return;
    }
    for (redlock__ghost **pp = &gn->ghosts; *pp;) {
        g = *pp;
        if (g->carrier != c) {
            pp = &g->next;
            continue;
        }
        *pp = g->next;
        g->next = gn->flying;
        gn->flying = g;
        gn->nflying++;
        gn->nghosts--;
    }
    pthread_mutex_unlock(&gn->mu);
    c->prefix.nghosts = count;
    c->prefix.count += count;
}

/* Until when a request given up on now may still be applied: a network
 * (or a proxy) may hold it back past our timeout, by at most one more
 * node timeout (the bound the protocol assumes; see README). */
static int64_t late_until(const redlock__node *n)
{
    int budget = n->opts->node_timeout_ms ? n->opts->node_timeout_ms
                                          : n->opts->io_timeout_ms;
    return redlock__now_ns() + (int64_t)budget * 1000000;
}

/* The exchange that carried c's ghosts is over: answered ones are done,
 * the others (the connection failed) are pending again, for a claimer to
 * wait out and have sent (model rules resolve, ghost_return).  Called
 * with n->mu held; returns what to free outside it. */
static redlock__ghost *settle_ghosts(redlock__node *n, const redlock__conn *c,
                                     int broken)
{
    redlock__ghost *done = NULL;
    for (redlock__ghost **pp = &n->flying; *pp;) {
        redlock__ghost *g = *pp;
        if (g->carrier != c) {
            pp = &g->next;
            continue;
        }
        *pp = g->next;
        n->nflying--;
        g->carrier = NULL;
        if (broken) {
            g->late_until_ns = late_until(n);
            g->next = n->ghosts;
            n->ghosts = g;
            n->nghosts++;
        } else {
            g->next = done;
            done = g;
        }
    }
    if (n->settle_waiters > 0)
        pthread_cond_broadcast(&n->settled);
    return done;
}

redlock__conn *redlock__node_get(redlock__node *n, redlock_status *st)
{
    redlock__conn *c = NULL;
    int ghosts;
    if (n->cluster &&
        !(n = redlock__cluster_any(
              n,
              redlock__now_ns() + (int64_t)n->opts->connect_timeout_ms * 1000000,
              st)))
        return NULL;
    /* A cluster's ghosts are the cluster node's (see queue_ghosts). */
    redlock__node *gn = n->parent ? n->parent : n;
    for (;;) {
        pthread_mutex_lock(&n->mu);
        c = n->nidle > 0 ? n->idle[--n->nidle] : NULL;
        pthread_mutex_unlock(&n->mu);
        pthread_mutex_lock(&gn->mu);
        ghosts = gn->nghosts;
        pthread_mutex_unlock(&gn->mu);
        if (!c || (c->gen == atomic_load(&n->gen) && idle_conn_alive(c)))
            break;
        redlock__conn_free(c);
    }
    if (!c && !(c = redlock__node_connect(n, st)))
        return NULL;
    if (ghosts > 0)
        queue_ghosts(n, c);
    *st = REDLOCK_OK;
    return c;
}

void redlock__node_put(redlock__node *n, redlock__conn *c, int broken)
{
    if (!c)
        return;
    if (n->cluster)
        n = c->node; /* the master it went to */
    broken = broken || c->ctx->err || c->connecting || c->out.len != 0 ||
             c->prefix.count != 0;
    if (broken) {
        redlock__sentinel_stale(n); /* the master may have moved */
        redlock__cluster_stale(n->parent);
    }
    if (c->gen != atomic_load(&n->gen))
        broken = 1; /* it did: this one goes to the old address */
    int carried = c->prefix.nghosts > 0;
    /* A ghost delete a master redirected (its slot moved) is still owed. */
    int redo = broken || c->prefix.ghost_redo;
    c->prefix = (redlock__prefix){0};
    redlock__ghost *done = NULL, *drop = NULL;
    redlock__node *gn = n->parent ? n->parent : n;
    if (carried) {
        pthread_mutex_lock(&gn->mu);
        done = settle_ghosts(gn, c, redo);
        drop = trim_ghosts(gn);
        pthread_mutex_unlock(&gn->mu);
    }
    pthread_mutex_lock(&n->mu);
    if (!broken && n->nidle < n->idle_cap) {
        n->idle[n->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&n->mu);
    free_ghosts(done);
    free_ghosts(drop);
    redlock__conn_free(c);
}

/* (model rule ghost_add; the caller holds the identity's delete: see
 * redlock__handle_begin_delete) */
void redlock__node_add_ghost(redlock__node *n, const char *key, size_t keylen,
                             const char *token)
{
    redlock__ghost *g = calloc(1, sizeof *g);
    if (!g)
        return; /* best effort: the key still expires with its ttl */
    g->key = malloc(keylen ? keylen : 1);
    g->token = strdup(token);
    if (!g->key || !g->token) {
        ghost_free(g);
        return;
    }
    memcpy(g->key, key, keylen);
    g->keylen = keylen;
    g->late_until_ns = late_until(n);

    pthread_mutex_lock(&n->mu);
    g->next = n->ghosts;
    n->ghosts = g;
    n->nghosts++;
    redlock__ghost *drop = trim_ghosts(n);
    pthread_mutex_unlock(&n->mu);
    free_ghosts(drop);
}

static int ghost_is(const redlock__ghost *g, const char *key, size_t keylen,
                    const char *token)
{
    return g->keylen == keylen && memcmp(g->key, key, keylen) == 0 &&
           strcmp(g->token, token) == 0;
}

int redlock__node_claim_ghosts(redlock__node *n, const char *key,
                               size_t keylen, const char *token,
                               int64_t deadline_ns)
{
    int rc = 0;
    pthread_mutex_lock(&n->mu);
    for (;;) {
        int64_t now = redlock__now_ns(), wake = deadline_ns;
        int busy = 0, due = 0;
        for (redlock__ghost *g = n->ghosts; g; g = g->next) {
            if (!ghost_is(g, key, keylen, token))
                continue;
            if (g->late_until_ns > now) {
                busy = 1; /* an earlier request for it may still land */
                if (g->late_until_ns < wake)
                    wake = g->late_until_ns;
            } else {
                due = 1;
            }
        }
        for (redlock__ghost *g = n->flying; g && !busy; g = g->next)
            busy = ghost_is(g, key, keylen, token);
        if (!busy) {
            rc = due;
            break;
        }
        if (now >= deadline_ns) {
            rc = -1;
            break;
        }
        /* Settled ones come back pending (failed) or go (answered): look
         * again then, or when a late window closes. */
        n->settle_waiters++;
        redlock__cond_wait_until(&n->settled, &n->mu, wake);
        n->settle_waiters--;
    }
    pthread_mutex_unlock(&n->mu);
    return rc;
}
