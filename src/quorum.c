/*
 * One operation on N nodes: take a connection per node, pipeline that
 * node's calls, run all nodes' I/O concurrently under one deadline, and
 * answer NOSCRIPT (after SCRIPT FLUSH, a restart or a failover) with one
 * EVAL to just the nodes that said it.  Counting votes is the caller's.
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* Errors of a node that cannot serve for now but will (restarting,
 * running a long script, cut off from its master, a cluster in motion):
 * to the caller that is the node being unavailable, REDLOCK_IO, which a
 * wait rides out, not an answer. */
static const char *const transient[] = {"LOADING ", "BUSY ", "MASTERDOWN ",
                                        "TRYAGAIN ", "CLUSTERDOWN ",
                                        "MOVED ", "ASK "};

redlock_status redlock__reply_error_status(const redisReply *r)
{
    static const char *const auth[] = {"NOAUTH", "WRONGPASS", "NOPERM"};
    for (size_t i = 0; i < sizeof auth / sizeof auth[0]; i++)
        if (strncmp(r->str, auth[i], strlen(auth[i])) == 0)
            return REDLOCK_AUTH;
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        if (strncmp(r->str, transient[i], strlen(transient[i])) == 0)
            return REDLOCK_IO;
    return REDLOCK_SERVER;
}

/* (model rule exchange: per connection in order, across connections in
 * any order, a reply or a timeout per request) */
void redlock__exchange(redlock__batch *b, int n, int64_t deadline_ns)
{
    redlock__exchange_until(b, n, deadline_ns, NULL);
}

/* A node that stopped answering (abandoned by an earlier exchange, see
 * io.c) is tried by one exchange per node timeout, the others go without
 * it: each try leaves a pipeline in a stopped server's buffer, and a node
 * that resumes with thousands of them is as good as stalled for a while
 * more, long enough for the next node to fail too. */
static int skip_slow(redlock__node *n)
{
    if (!atomic_load(&n->slow))
        return 0;
    int64_t now = redlock__now_ns(), at = atomic_load(&n->probe_at_ns);
    if (now < at)
        return 1;
    int budget = n->opts->node_timeout_ms ? n->opts->node_timeout_ms
                                          : n->opts->io_timeout_ms;
    return !atomic_compare_exchange_strong(&n->probe_at_ns, &at,
                                           now + (int64_t)budget * 1000000);
}

void redlock__exchange_until(redlock__batch *b, int n, int64_t deadline_ns,
                             const redlock__decider *d)
{
    for (int i = 0; i < n; i++)
        if (b[i].node->cluster) {
            redlock__cluster_exchange(b, n, deadline_ns, d);
            return;
        }
    redlock__exchange_plain(b, n, deadline_ns, d);
}

void redlock__exchange_plain(redlock__batch *b, int n, int64_t deadline_ns,
                             const redlock__decider *d)
{
    for (int i = 0; i < n; i++) {
        redlock__batch *bi = &b[i];
        bi->st = REDLOCK_OK;
        bi->uncertain = 0;
        bi->err[0] = '\0';
        bi->pending = 0;
        bi->conn = NULL;
        if (bi->ncalls == 0)
            continue;
        /* (A cluster's master is skipped even alone: its cluster is
         * tried through it once per node timeout, and its locks' fate is
         * that master's.) */
        if (d && (n > 1 || bi->node->parent) && !d->ask_all &&
            skip_slow(bi->node)) {
            bi->st = REDLOCK_IO;
            snprintf(bi->err, sizeof bi->err,
                     "%.100s: not tried: it stopped answering lately",
                     bi->node->name);
            continue;
        }
        redlock_status st;
        bi->conn = redlock__node_get(bi->node, &st);
        if (!bi->conn) {
            bi->st = st;
            strncpy(bi->err, redlock_last_error(), sizeof bi->err - 1);
            bi->err[sizeof bi->err - 1] = '\0';
            continue;
        }
        bi->conn->arena_used = 0; /* the last exchange's replies are gone */
        for (int k = 0; k < bi->ncalls; k++) {
            if (redlock__conn_append_call(bi->conn, &bi->calls[k],
                                          bi->calls[k].eval) != 0) {
                bi->st = REDLOCK_NOMEM;
                strcpy(bi->err, "out of memory");
                break;
            }
            bi->pending++;
        }
    }
    /* The NOSCRIPT retry below runs to the end: only nodes that answered
     * are left in it, and their answers count. */
    redlock__io_run_until(b, n, deadline_ns, d);

    int again = 0;
    for (int i = 0; i < n; i++) {
        redlock__batch *bi = &b[i];
        if (bi->st != REDLOCK_OK || !bi->conn)
            continue;
        /* A call after the first NOSCRIPT ran before the EVAL that now
         * replaces it: a WAIT there counted replicas for older writes, a
         * PTTL read the key before our write.  Send those again after the
         * EVAL, in their order; scripts that did run stay answered. */
        int redo = 0;
        for (int k = 0; k < bi->ncalls; k++) {
            redlock__call *c = &bi->calls[k];
            int noscript = c->script && is_noscript(c->reply);
            if (noscript)
                redo = 1;
            if (!noscript && (!redo || c->script))
                continue;
            redlock__reply_free(c->reply);
            c->reply = NULL;
            /* The first WAIT spent its timeout already: the second gets
             * half of what is left, so that its answer still comes in. */
            redlock__call wait = *c;
            char tmo[24];
            if (c->argc == 3 && c->argvlen[0] == 4 &&
                memcmp(c->argv[0], "WAIT", 4) == 0) {
                int64_t left = (deadline_ns - redlock__now_ns()) / 2000000;
                wait.argv[2] = tmo;
                wait.argvlen[2] = redlock__fmt_i64(tmo, left > 0 ? left : 1);
                c = &wait;
            }
            if (redlock__conn_append_call(bi->conn, c, noscript) != 0) {
                bi->st = REDLOCK_NOMEM;
                strcpy(bi->err, "out of memory");
                break;
            }
            bi->pending++;
            again = 1;
        }
    }
    if (again)
        redlock__io_run(b, n, deadline_ns);

}

void redlock__batches_clear(redlock__batch *b, int n)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < b[i].ncalls; k++)
            if (b[i].calls[k].reply) {
                redlock__reply_free(b[i].calls[k].reply);
                b[i].calls[k].reply = NULL;
            }
        /* Only now: the replies may live in the connection's arena. */
        redlock__node_put(b[i].node, b[i].conn, b[i].st != REDLOCK_OK);
        b[i].conn = NULL;
        for (int k = 0; k < b[i].nsubs; k++)
            redlock__node_put(b[i].subs[k].node, b[i].subs[k].conn,
                              b[i].subs[k].broken);
        free(b[i].subs);
        b[i].subs = NULL;
        b[i].nsubs = 0;
    }
}
