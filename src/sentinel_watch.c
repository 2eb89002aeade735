/*
 * The Sentinel watcher: one thread per client with Sentinel nodes, which
 * hears +switch-master and +promoted-slave on one sentinel of each node
 * and asks the sentinels every second, so that the client leaves a master
 * the sentinels replaced even when no message comes (sentinel.c judges
 * their answers).
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
    redlock__node *peer = redlock__sentinel_peer(n, (unsigned)w->peer[i]);
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
    /* Only the connect timeout: redlock_client_free joins this thread,
     * and its bound is connect + I/O timeout in all. */
    redlock__io_run(&b, 1, redlock__now_ns() +
                               (int64_t)w->c->opts.connect_timeout_ms * 1000000);
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
 * not taken as it stands: the sentinels are asked (redlock__sentinel_resolve), so that one
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
                redlock_status st = redlock__sentinel_resolve(&c->nodes[i]);
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
