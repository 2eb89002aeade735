/*
 * Sentinel URLs: a node whose address the sentinels give.
 *
 * The sentinels are asked with the library's own connections and I/O
 * (each sentinel is a redlock__node of its own), so that every step is
 * bounded by the timeouts and TLS applies to them as to any node.  The
 * address is asked for lazily, before a new connection, whenever it is
 * unknown or stale: after a connection error or timeout, a READONLY or
 * MASTERDOWN reply, a ROLE that is not "master" (every new connection
 * asks it, in the handshake's round trip), or a +switch-master message,
 * which a watcher thread per client hears on one sentinel of each group.
 * A new address bumps the node's generation, and connections of an older
 * one are closed rather than reused (node.c).
 *
 * Nothing here re-creates a lock: a failover that lost a key is seen by
 * the next renewal as "no key", which is a loss (lock.c).
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* A sentinel's node from a URL we write (percent-encoded credentials), so
 * that it is set up exactly as any node is (TLS included). */
static redlock_status peer_init(redlock__node *peer, const redlock__node *n,
                                int i, const char *user, const char *pw)
{
    const redlock__url *u = &n->url;
    size_t cap = 64 + strlen(u->sentinel_host[i]) +
                 3 * ((user ? strlen(user) : 0) + (pw ? strlen(pw) : 0));
    redlock__buf b = {malloc(cap), 0, cap};
    if (!b.data)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    b.len = (size_t)snprintf(b.data, cap, "%s://", u->tls ? "rediss" : "redis");
    if (user || pw) {
        if (user)
            put_encoded(&b, user);
        if (pw) {
            b.data[b.len++] = ':';
            put_encoded(&b, pw);
        }
        b.data[b.len++] = '@';
    }
    const char *h = u->sentinel_host[i];
    snprintf(b.data + b.len, cap - b.len,
             strchr(h, ':') ? "[%s]:%d" : "%s:%d", h, u->sentinel_port[i]);
    redlock_status st = redlock__node_init(peer, b.data, n->opts);
    memset(b.data, 0, cap); /* it held the password */
    free(b.data);
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
    for (int i = 0; i < u->nsentinels; i++) {
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
static redlock_status resolve(redlock__node *n)
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
    redlock__decider d = {k / 2 + 1, majority_answered, NULL};
    redlock__exchange_until(
        b, k, redlock__now_ns() + (int64_t)n->opts->connect_timeout_ms * 1000000,
        &d);

    int found = newest_answer(b, calls, k), nil = 0;
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
        if (moved && n->client)
            redlock__notify_moved(n->client);
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
    if (ask && (*st = resolve(n)) != REDLOCK_OK) {
        atomic_store(&s->stale, 1);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    snprintf(host, hostlen, "%s", s->host);
    where->port = s->port;
    *gen = atomic_load(&n->gen);
    pthread_mutex_unlock(&s->mu);
    where->host = host;
    where->nsentinels = 0;
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

/* ---- the watcher: +switch-master, and asking the sentinels ----------- */

/* How often the watcher asks the sentinels even without a message: the
 * subscribed sentinel may be stalled or cut off (it then stays silent
 * and never closes), and the old master, cut off from the sentinels but
 * not from us, keeps taking writes: without asking, the client would
 * renew there while another client holds the lock on the new master.
 * One round trip to the sentinels a second bounds that. */
#define POLL_MS 1000

struct redlock__sentinel_watch {
    redlock_client *c;
    pthread_t thread;
    int wake[2];
    _Atomic int stop;
    /* Per node of the client (only Sentinel ones are used): the
     * subscription, the peer it is on, and when to try again. */
    redlock__conn *sub[REDLOCK_MAX_NODES];
    int peer[REDLOCK_MAX_NODES];
    int64_t retry_at_ns[REDLOCK_MAX_NODES];
    int subscribed_once[REDLOCK_MAX_NODES];
    /* When to ask the sentinels next (see POLL_MS). */
    int64_t poll_at_ns[REDLOCK_MAX_NODES];
};

/* Subscribe on node i's next sentinel to +switch-master (a sentinel took
 * the new master) and +promoted-slave (the failover's leader promoted
 * it: heard earlier, when that sentinel is the leader, which switches
 * only once the replicas follow); the handshake and the confirmations in
 * one exchange, bounded by the timeouts. */
static redlock__conn *open_watch(struct redlock__sentinel_watch *w, int i)
{
    redlock__node *n = &w->c->nodes[i];
    struct redlock__sentinel *s = n->sentinel;
    redlock__node *peer = &s->peers[w->peer[i] % s->npeers];
    redlock_status st;
    redlock__conn *conn = redlock__node_connect(peer, &st);
    if (!conn)
        return NULL;
    redlock__call sub[2];
    memset(sub, 0, sizeof sub);
    sub[0].argc = 3;
    sub[0].argv[0] = "SUBSCRIBE";
    sub[0].argv[1] = "+switch-master";
    sub[0].argv[2] = "+promoted-slave";
    for (int a = 0; a < 3; a++)
        sub[0].argvlen[a] = strlen(sub[0].argv[a]);
    redlock__batch b;
    memset(&b, 0, sizeof b);
    b.node = peer;
    b.conn = conn;
    b.calls = sub;
    b.ncalls = 2;
    b.pending = 2; /* one confirmation per channel */
    if (redlock__conn_append_call(conn, &sub[0], 0) != 0) {
        redlock__conn_free(conn);
        return NULL;
    }
    redlock__io_run(&b, 1, redlock__now_ns() +
                               ((int64_t)w->c->opts.connect_timeout_ms +
                                w->c->opts.io_timeout_ms) * 1000000);
    int ok = b.st == REDLOCK_OK;
    for (int k = 0; k < 2; k++) {
        ok = ok && sub[k].reply && sub[k].reply->type == REDIS_REPLY_ARRAY;
        redlock__reply_free(sub[k].reply);
    }
    if (!ok) {
        redlock__conn_free(conn);
        return NULL;
    }
    /* A switch may have gone unheard while there was no subscription. */
    if (w->subscribed_once[i])
        w->poll_at_ns[i] = 0;
    w->subscribed_once[i] = 1;
    return conn;
}

/* Does a message say node n's master moved?  +switch-master "<name>
 * <old-ip> <old-port> <new-ip> <new-port>", or +promoted-slave "slave
 * <ip>:<port> <ip> <port> @ <name> <ip> <port>" (the failover's leader,
 * which switches only once the replicas follow).  The address in it is
 * not taken as it stands: the sentinels are asked (resolve), so that one
 * sentinel's word never outweighs a newer view. */
static int names_our_master(const redlock__node *n, const char *channel,
                            const char *text)
{
    char name[256], oh[256], nh[256], kind[16], at[4];
    int op, np;
    if (strcmp(channel, "+switch-master") == 0)
        return sscanf(text, "%255s %255s %d %255s %d", name, oh, &op, nh,
                      &np) == 5 &&
               strcmp(name, n->url.master) == 0;
    return sscanf(text, "%15s %255s %255s %d %3s %255s", kind, oh, nh, &np,
                  at, name) == 6 &&
           strcmp(at, "@") == 0 && strcmp(name, n->url.master) == 0;
}

/* Handle what node i's subscription has read; -1 when it must go. */
static int drain_watch(struct redlock__sentinel_watch *w, int i)
{
    redlock__conn *conn = w->sub[i];
    for (;;) {
        void *reply = NULL;
        conn->arena_used = 0;
        if (redisGetReplyFromReader(conn->ctx, &reply) != REDIS_OK)
            return -1;
        if (!reply)
            return 0;
        redisReply *r = reply;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING &&
            r->element[2]->type == REDIS_REPLY_STRING &&
            strcmp(r->element[0]->str, "message") == 0)
            if (names_our_master(&w->c->nodes[i], r->element[1]->str,
                                 r->element[2]->str))
                w->poll_at_ns[i] = 0; /* ask the sentinels now */
        redlock__reply_free(reply);
    }
}

static void drop_watch(struct redlock__sentinel_watch *w, int i)
{
    redlock__conn_free(w->sub[i]);
    w->sub[i] = NULL;
    w->peer[i]++; /* the next sentinel */
    w->retry_at_ns[i] =
        redlock__now_ns() + (int64_t)w->c->opts.retry_delay_ms * 1000000;
}

static void *watch_main(void *arg)
{
    struct redlock__sentinel_watch *w = arg;
    redlock_client *c = w->c;
    while (!atomic_load(&w->stop)) {
        struct pollfd pfd[REDLOCK_MAX_NODES + 1];
        int idx[REDLOCK_MAX_NODES + 1], k = 0, ready = 0;
        int64_t now = redlock__now_ns(), wake = now + 1000000000;
        for (int i = 0; i < c->nnodes && !atomic_load(&w->stop); i++) {
            if (!c->nodes[i].sentinel)
                continue;
            if (now >= w->poll_at_ns[i]) {
                /* A failure leaves the address as it is: calls find out
                 * for themselves, and the next poll asks again. */
                redlock_status st = resolve(&c->nodes[i]);
                (void)st;
                now = redlock__now_ns();
                w->poll_at_ns[i] = now + (int64_t)POLL_MS * 1000000;
            }
            if (w->poll_at_ns[i] < wake)
                wake = w->poll_at_ns[i];
            if (!w->sub[i] && now >= w->retry_at_ns[i] &&
                !(w->sub[i] = open_watch(w, i)))
                drop_watch(w, i);
            if (!w->sub[i]) {
                if (w->retry_at_ns[i] < wake)
                    wake = w->retry_at_ns[i];
                continue;
            }
            redlock__conn *s = w->sub[i];
            pfd[k].fd = s->ctx->fd;
            pfd[k].events = redlock__conn_events(s, s->sent < s->out.len, 1);
            pfd[k].revents = 0;
            ready |= redlock__tls_pending(s); /* poll cannot see it */
            idx[k++] = i;
        }
        pfd[k].fd = w->wake[0];
        pfd[k].events = POLLIN;
        pfd[k].revents = 0;
        now = redlock__now_ns();
        int ms = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
        int prc = poll(pfd, (nfds_t)k + 1, ready ? 0 : ms);
        if (prc < 0 || (prc == 0 && !ready))
            continue;
        for (int j = 0; j < k; j++) {
            int i = idx[j];
            redlock__conn *s = w->sub[i];
            if (!pfd[j].revents && !redlock__tls_pending(s))
                continue;
            /* TLS tries both ways whatever woke it (see io.c: step). */
            if (pfd[j].revents & POLLNVAL || redlock__conn_flush(s) != 0 ||
                redlock__conn_read(s) != 0 ||
                redlock__reply_too_big(w->sub[i]->ctx) ||
                drain_watch(w, i) != 0) {
                /* The sentinel went away: switches go unheard until the
                 * next one is subscribed, so ask again meanwhile. */
                redlock__sentinel_stale(&c->nodes[i]);
                drop_watch(w, i);
            }
        }
    }
    for (int i = 0; i < c->nnodes; i++)
        redlock__conn_free(w->sub[i]);
    return NULL;
}

redlock_status redlock__sentinel_watch_start(redlock_client *c)
{
    int any = 0;
    for (int i = 0; i < c->nnodes; i++)
        any |= c->nodes[i].sentinel != NULL;
    if (!any)
        return REDLOCK_OK;
    struct redlock__sentinel_watch *w = calloc(1, sizeof *w);
    if (!w)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    w->c = c;
    for (int i = 0; i < c->nnodes; i++) /* redlock_connect has just asked */
        w->poll_at_ns[i] = redlock__now_ns() + (int64_t)POLL_MS * 1000000;
    if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(w);
        return redlock__fail(REDLOCK_NOMEM, "cannot make a pipe: %s",
                             strerror(errno));
    }
    int rc = redlock__thread_start(&w->thread, watch_main, w);
    if (rc != 0) {
        close(w->wake[0]);
        close(w->wake[1]);
        free(w);
        return redlock__fail(REDLOCK_NOMEM,
                             "cannot start the Sentinel watcher: %s",
                             strerror(rc));
    }
    c->sentinel_watch = w;
    return REDLOCK_OK;
}

void redlock__sentinel_watch_stop(redlock_client *c, int join)
{
    struct redlock__sentinel_watch *w = c->sentinel_watch;
    if (!w)
        return;
    atomic_store(&w->stop, 1);
    char one = 1;
    ssize_t wr = write(w->wake[1], &one, 1);
    (void)wr; /* a full pipe wakes it as well */
    if (!join)
        return;
    pthread_join(w->thread, NULL);
    close(w->wake[0]);
    close(w->wake[1]);
    free(w);
    c->sentinel_watch = NULL;
}
