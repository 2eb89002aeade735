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
    redlock__url_describe(&n->url, n->name, sizeof n->name);
    n->opts = opts;
    n->idle = calloc(POOL_CAP, sizeof *n->idle);
    if (!n->idle) {
        redlock__url_clear(&n->url);
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    }
    n->idle_cap = POOL_CAP;
    pthread_mutex_init(&n->mu, NULL);
    return REDLOCK_OK;
}

static void ghost_free(redlock__ghost *g)
{
    free(g->key);
    free(g->token);
    free(g);
}

void redlock__node_destroy(redlock__node *n)
{
    if (!n->idle)
        return;
    for (int i = 0; i < n->nidle; i++)
        redlock__conn_free(n->idle[i]);
    free(n->idle);
    n->idle = NULL;
    while (n->ghosts) {
        redlock__ghost *g = n->ghosts;
        n->ghosts = g->next;
        ghost_free(g);
    }
    pthread_mutex_destroy(&n->mu);
    redlock__url_clear(&n->url);
}

void redlock__conn_free(redlock__conn *c)
{
    if (!c)
        return;
    if (c->ctx)
        redisFree(c->ctx);
    redlock__buf_free(&c->out);
    free(c);
}

static struct timeval tv_ms(int64_t ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = {.tv_sec = ms / 1000,
                         .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Run the calls on one fresh connection (the handshake, ghost deletes). */
static redlock_status run_one(redlock__node *n, redlock__conn *c,
                              redlock__call *calls, int ncalls, int64_t dl)
{
    redlock__batch b;
    memset(&b, 0, sizeof b);
    b.node = n;
    b.conn = c;
    b.calls = calls;
    b.ncalls = ncalls;
    for (int i = 0; i < ncalls; i++)
        if (redlock__conn_append_call(c, &calls[i], calls[i].script != NULL))
            return redlock__fail(REDLOCK_NOMEM, "out of memory");
    b.pending = ncalls;
    redlock__io_run(&b, 1, dl);
    if (b.st != REDLOCK_OK)
        return redlock__fail(b.st, "%s", b.err);
    return REDLOCK_OK;
}

static void free_replies(redlock__call *calls, int n)
{
    for (int i = 0; i < n; i++) {
        if (calls[i].reply)
            freeReplyObject(calls[i].reply);
        calls[i].reply = NULL;
    }
}

static void set_arg(redlock__call *c, const char *s, size_t len)
{
    c->argv[c->argc] = s;
    c->argvlen[c->argc++] = len;
}

/* AUTH and SELECT, pipelined in one round trip. */
static redlock_status handshake(redlock__node *n, redlock__conn *c,
                                int64_t dl)
{
    const redlock__url *u = &n->url;
    redlock__call calls[2];
    int nc = 0, auth = -1, sel = -1;
    char db[16];

    memset(calls, 0, sizeof calls);
    if (u->password || u->user) {
        auth = nc++;
        set_arg(&calls[auth], "AUTH", 4);
        if (u->user)
            set_arg(&calls[auth], u->user, strlen(u->user));
        /* A user without a password is an ACL "nopass" user: any
         * password is accepted, so send an empty one. */
        const char *pw = u->password ? u->password : "";
        set_arg(&calls[auth], pw, strlen(pw));
    }
    if (u->db != 0) {
        sel = nc++;
        set_arg(&calls[sel], "SELECT", 6);
        set_arg(&calls[sel], db, (size_t)snprintf(db, sizeof db, "%d", u->db));
    }
    if (nc == 0)
        return REDLOCK_OK;
    redlock_status st = run_one(n, c, calls, nc, dl);
    if (st == REDLOCK_OK && auth >= 0 &&
        calls[auth].reply->type == REDIS_REPLY_ERROR)
        st = redlock__fail(REDLOCK_AUTH, "%s: AUTH%s%s refused: %s", n->name,
                           u->user ? " as user " : "", u->user ? u->user : "",
                           calls[auth].reply->str);
    else if (st == REDLOCK_OK && sel >= 0 &&
             calls[sel].reply->type == REDIS_REPLY_ERROR)
        st = redlock__fail(redlock__reply_error_status(calls[sel].reply),
                           "%s: SELECT %d refused: %s", n->name, u->db,
                           calls[sel].reply->str);
    free_replies(calls, nc);
    return st;
}

static redlock__conn *connect_new(redlock__node *n, int64_t dl,
                                  redlock_status *st)
{
    int64_t left_ms = (dl - redlock__now_ns()) / 1000000;
    if (left_ms > n->opts->connect_timeout_ms)
        left_ms = n->opts->connect_timeout_ms;
    if (left_ms <= 0) {
        *st = redlock__fail(REDLOCK_IO, "%s: timed out before connecting",
                            n->name);
        return NULL;
    }
    redlock__conn *c = calloc(1, sizeof *c);
    if (!c) {
        *st = redlock__fail(REDLOCK_NOMEM, "out of memory");
        return NULL;
    }
    struct timeval tv = tv_ms(left_ms);
    c->ctx = n->url.is_unix ? redisConnectUnixWithTimeout(n->url.path, tv)
                            : redisConnectWithTimeout(n->url.host,
                                                      n->url.port, tv);
    if (!c->ctx) {
        free(c);
        *st = redlock__fail(REDLOCK_NOMEM, "out of memory");
        return NULL;
    }
    if (c->ctx->err) {
        *st = redlock__fail(REDLOCK_IO, "%s: cannot connect: %s", n->name,
                            c->ctx->errstr);
        redlock__conn_free(c);
        return NULL;
    }
    int fd = c->ctx->fd;
    /* hiredis sets no FD_CLOEXEC: a job exec'd by the host must not
     * inherit our sockets.  (A fork in another thread between socket()
     * and here can still leak one; hiredis 0.14 gives no SOCK_CLOEXEC.) */
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* Non-blocking for hiredis too, so that EAGAIN is "try later" rather
     * than a sticky error; our poll() under one deadline bounds all I/O.
     * The socket timeouts are set anyway, should anything ever block. */
    c->ctx->flags &= ~REDIS_BLOCK;
    redisSetTimeout(c->ctx, tv_ms(n->opts->io_timeout_ms));
    if (!n->url.is_unix)
        redisEnableKeepAlive(c->ctx);

    int64_t hs_dl = redlock__now_ns() + (int64_t)n->opts->io_timeout_ms * 1000000;
    if (hs_dl > dl)
        hs_dl = dl;
    *st = handshake(n, c, hs_dl);
    if (*st != REDLOCK_OK) {
        redlock__conn_free(c);
        return NULL;
    }
    return c;
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

/* Delete, token-checked, what timed-out commands may have left behind.
 * EVAL rather than EVALSHA: rare, and it must not depend on the cache. */
static redlock_status bury_ghosts(redlock__node *n, redlock__conn *c,
                                  int64_t dl)
{
    pthread_mutex_lock(&n->mu);
    redlock__ghost *list = n->ghosts;
    int count = n->nghosts;
    n->ghosts = NULL;
    n->nghosts = 0;
    pthread_mutex_unlock(&n->mu);
    if (!list)
        return REDLOCK_OK;

    redlock__call *calls = calloc((size_t)count, sizeof *calls);
    redlock_status st = REDLOCK_NOMEM;
    if (calls) {
        int i = 0;
        for (redlock__ghost *g = list; g; g = g->next, i++) {
            calls[i].script = &redlock__script_release;
            set_arg(&calls[i], g->key, g->keylen);
            set_arg(&calls[i], g->token, strlen(g->token));
        }
        st = run_one(n, c, calls, count, dl);
        free_replies(calls, count);
        free(calls);
    }
    if (st == REDLOCK_OK) {
        while (list) {
            redlock__ghost *g = list;
            list = g->next;
            ghost_free(g);
        }
        return REDLOCK_OK;
    }
    /* Keep them for the next contact, newest first, within the cap. */
    pthread_mutex_lock(&n->mu);
    redlock__ghost *tail = list;
    while (tail->next)
        tail = tail->next;
    tail->next = n->ghosts;
    n->ghosts = list;
    n->nghosts += count;
    redlock__ghost *drop = trim_ghosts(n);
    pthread_mutex_unlock(&n->mu);
    while (drop) {
        redlock__ghost *g = drop;
        drop = g->next;
        ghost_free(g);
    }
    return st;
}

/* An idle Redis connection has nothing to read: if its socket is readable,
 * the server closed it (restart, CLIENT KILL, timeout) or it is out of
 * step.  Finding that out now costs one poll() and saves the caller an
 * error for a connection that died while idle. */
static int idle_conn_alive(const redlock__conn *c)
{
    struct pollfd p = {.fd = c->ctx->fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

redlock__conn *redlock__node_get(redlock__node *n, int64_t dl,
                                 redlock_status *st)
{
    redlock__conn *c = NULL;
    int ghosts;
    for (;;) {
        pthread_mutex_lock(&n->mu);
        c = n->nidle > 0 ? n->idle[--n->nidle] : NULL;
        ghosts = n->nghosts;
        pthread_mutex_unlock(&n->mu);
        if (!c || idle_conn_alive(c))
            break;
        redlock__conn_free(c);
    }

    if (!c && !(c = connect_new(n, dl, st)))
        return NULL;
    if (ghosts > 0 && (*st = bury_ghosts(n, c, dl)) != REDLOCK_OK) {
        redlock__conn_free(c);
        return NULL;
    }
    *st = REDLOCK_OK;
    return c;
}

void redlock__node_put(redlock__node *n, redlock__conn *c, int broken)
{
    if (!c)
        return;
    if (!broken && !c->ctx->err && c->out.len == 0) {
        pthread_mutex_lock(&n->mu);
        if (n->nidle < n->idle_cap) {
            n->idle[n->nidle++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&n->mu);
    }
    redlock__conn_free(c);
}

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

    pthread_mutex_lock(&n->mu);
    g->next = n->ghosts;
    n->ghosts = g;
    n->nghosts++;
    redlock__ghost *drop = trim_ghosts(n);
    pthread_mutex_unlock(&n->mu);
    while (drop) {
        g = drop;
        drop = g->next;
        ghost_free(g);
    }
}
