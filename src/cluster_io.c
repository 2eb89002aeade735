/*
 * An exchange in which some batches go to cluster nodes: each such batch
 * is cut into parts, one per master its calls' slots belong to, and all
 * parts of all batches run at once through the plain exchange (quorum.c),
 * one connection per part.  Then redirections are followed, in rounds:
 *
 *   -MOVED slot addr  the slot lives elsewhere now: the map learns it,
 *                     the call goes there (and CLUSTER SLOTS along with
 *                     it, so that the next command needs no redirect);
 *   -ASK slot addr    the slot is being migrated and the key is not on
 *                     the old owner: ASKING, then the call, to the new
 *                     one, this once (as EVAL: its script cache is not
 *                     known, and a NOSCRIPT's EVAL would lack the ASKING);
 *   -TRYAGAIN, -CLUSTERDOWN   a migration or a failover under way: the
 *                     same master again after a short pause.
 *
 * Each of these replies means the command was not applied, so sending it
 * again cannot apply it twice; a call that got no reply at all is the
 * caller's usual uncertain write (ghost delete, token-checked).  Rounds
 * end at the caller's deadline: a redirection not followed by then leaves
 * its error reply, which counts as the node being unavailable
 * (REDLOCK_IO).
 *
 * A WAIT counts the replicas of the writes made before it on its own
 * connection: every part that writes gets its own copy, and the batch's
 * WAIT answer is the smallest of them.  The caller sees each batch as if
 * one node had answered: replies in its calls, st the first failure of a
 * part, and `partial` when some parts answered and others did not.
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redirections followed per call (Redis needs at most two in a row: a
 * MOVED to the importing node, then an ASK back, or the reverse). */
#define MAX_ROUNDS 5

typedef struct part {
    int parent; /* index of the caller's batch */
    int *idx;   /* parent's call of each of ours; -1 ASKING, -2 CLUSTER
                   SLOTS, -3 a WAIT that no longer counts; NULL: the calls
                   are the parent's own */
    redlock__call *calls; /* ours (NULL with idx NULL) */
} part;

typedef struct plan {
    redlock__batch *pb; /* the caller's */
    int n;
    redlock__batch *b; /* the parts' batches, contiguous for the I/O */
    part *p;
    int np, cap;
    const redlock__decider *d;
} plan;

enum { R_NONE, R_MOVED, R_ASK, R_RETRY };

static int redirect_kind(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ERROR)
        return R_NONE;
    if (strncmp(r->str, "MOVED ", 6) == 0)
        return R_MOVED;
    if (strncmp(r->str, "ASK ", 4) == 0)
        return R_ASK;
    if (strncmp(r->str, "TRYAGAIN", 8) == 0 ||
        strncmp(r->str, "CLUSTERDOWN", 11) == 0)
        return R_RETRY;
    return R_NONE;
}

/* "MOVED 3999 127.0.0.1:6381" (or ASK): the slot and the address; an
 * empty host is the node that answered. */
static int parse_redirect(const redisReply *r, const redlock__node *from,
                          unsigned *slot, char *host, size_t hostlen,
                          int *port)
{
    const char *s = strchr(r->str, ' ');
    if (!s)
        return -1;
    char *end;
    unsigned long sl = strtoul(s + 1, &end, 10);
    if (end == s + 1 || *end != ' ' || sl >= 16384)
        return -1;
    const char *addr = end + 1, *colon = strrchr(addr, ':');
    if (!colon)
        return -1;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || p < 1 || p > 65535)
        return -1;
    size_t hl = (size_t)(colon - addr);
    if (hl >= hostlen ||
        strspn(addr, "0123456789abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:_") < hl)
        return -1; /* no address: nothing that changes a URL's meaning */
    if (hl == 0)
        snprintf(host, hostlen, "%s", from->url.host);
    else {
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    *slot = (unsigned)sl;
    *port = (int)p;
    return 0;
}

int redlock__cluster_redirected(redlock__node *n, const redlock__node *from,
                                const redisReply *r)
{
    char host[256];
    unsigned slot;
    int port;
    if (redirect_kind(r) != R_MOVED ||
        parse_redirect(r, from, &slot, host, sizeof host, &port) != 0)
        return 0;
    return redlock__cluster_moved(n, slot, host, port) != NULL;
}

static int is_wait(const redlock__call *c)
{
    return !c->script && c->argc >= 1 && c->argvlen[0] == 4 &&
           memcmp(c->argv[0], "WAIT", 4) == 0;
}

static int grow(plan *pl)
{
    if (pl->np < pl->cap)
        return 0;
    int cap = pl->cap ? 2 * pl->cap : 8;
    redlock__batch *b = realloc(pl->b, (size_t)cap * sizeof *b);
    if (!b)
        return -1;
    pl->b = b;
    part *p = realloc(pl->p, (size_t)cap * sizeof *p);
    if (!p)
        return -1;
    pl->p = p;
    pl->cap = cap;
    return 0;
}

/* A new part of parent i to node, with room for room calls; its index or
 * -1 (out of memory). */
static int new_part(plan *pl, int i, redlock__node *node, int room)
{
    if (grow(pl) != 0)
        return -1;
    int k = pl->np;
    part *p = &pl->p[k];
    redlock__batch *b = &pl->b[k];
    memset(p, 0, sizeof *p);
    memset(b, 0, sizeof *b);
    p->parent = i;
    b->node = node;
    if (room > 0) {
        p->calls = calloc((size_t)room, sizeof *p->calls);
        p->idx = calloc((size_t)room, sizeof *p->idx);
        if (!p->calls || !p->idx) {
            free(p->calls);
            free(p->idx);
            return -1;
        }
        b->calls = p->calls;
    }
    pl->np++;
    return k;
}

static int find_part(plan *pl, int from, int i, const redlock__node *node)
{
    for (int k = from; k < pl->np; k++)
        if (pl->p[k].parent == i && pl->b[k].node == node)
            return k;
    return -1;
}

static void add_call(plan *pl, int k, const redlock__call *c, int idx)
{
    redlock__batch *b = &pl->b[k];
    b->calls[b->ncalls] = *c;
    b->calls[b->ncalls].reply = NULL;
    pl->p[k].idx[b->ncalls] = idx;
    b->ncalls++;
}

static void fail_parent(redlock__batch *pb, redlock_status st)
{
    pb->st = st;
    snprintf(pb->err, sizeof pb->err, "%s", redlock_last_error());
}

/* Cut cluster batch i into parts by master (round 0).  Calls are at most
 * pb->ncalls per part, plus one CLUSTER SLOTS and the WAIT copies. */
static void split(plan *pl, int i, int64_t deadline_ns)
{
    redlock__batch *pb = &pl->pb[i];
    redlock__node *n = pb->node, *prev = NULL;
    int first = pl->np;
    for (int k = 0; k < pb->ncalls; k++) {
        const redlock__call *c = &pb->calls[k];
        redlock_status st = REDLOCK_OK;
        if (is_wait(c)) { /* each writing part counts its own replicas */
            for (int q = first; q < pl->np; q++)
                add_call(pl, q, c, k);
            continue;
        }
        int slot = redlock__call_slot(c);
        redlock__node *to =
            c->shard  ? c->shard
            : slot >= 0 ? redlock__cluster_route(n, (unsigned)slot,
                                                 deadline_ns, &st)
            : prev      ? prev
                        : redlock__cluster_any(n, deadline_ns, &st);
        if (!to) {
            fail_parent(pb, st);
            return;
        }
        int q = find_part(pl, first, i, to);
        if (q < 0 && (q = new_part(pl, i, to, 2 * pb->ncalls + 1)) < 0) {
            fail_parent(pb, redlock__fail(REDLOCK_NOMEM, "out of memory"));
            return;
        }
        add_call(pl, q, c, k);
        prev = to;
    }
}

/* The replies so far, as the caller's batches: for the decider while the
 * I/O runs (aliases: the parts still own them), and at the end (moved). */
static int wait_worse(const redisReply *a, const redisReply *b)
{
    /* The answer to keep of two WAITs: none, then an error, then fewer. */
    if (!a || !b)
        return !a;
    if (a->type != REDIS_REPLY_INTEGER || b->type != REDIS_REPLY_INTEGER)
        return a->type != REDIS_REPLY_INTEGER;
    return a->integer <= b->integer;
}

static void gather(plan *pl, int move)
{
    /* A WAIT that a part did not answer leaves the batch's WAIT without an
     * answer, whatever the order of the parts: its writes' replicas are
     * unknown. */
    char missing[REDLOCK_MAX_NODES] = {0};
    /* The batches' own replies are only ever aliases before the end. */
    for (int i = 0; i < pl->n; i++)
        if (pl->pb[i].node->cluster)
            for (int k = 0; k < pl->pb[i].ncalls; k++)
                pl->pb[i].calls[k].reply = NULL;
    for (int q = 0; q < pl->np; q++) {
        part *p = &pl->p[q];
        redlock__batch *b = &pl->b[q], *pb = &pl->pb[p->parent];
        if (!p->idx)
            continue;
        for (int j = 0; j < b->ncalls; j++) {
            redisReply *r = b->calls[j].reply;
            int k = p->idx[j];
            if (k < 0)
                continue;
            redlock__call *to = &pb->calls[k];
            if (move)
                b->calls[j].reply = NULL;
            if (is_wait(to)) {
                int keep = missing[p->parent] ||
                           (r && to->reply && !wait_worse(r, to->reply));
                if (!keep && !r)
                    missing[p->parent] = 1;
                if (keep) {
                    if (move)
                        redlock__reply_free(r);
                    continue;
                }
                if (move && to->reply)
                    redlock__reply_free(to->reply);
            }
            to->reply = r;
        }
    }
}

/* Each batch's state from its parts': st the first failure, complete when
 * all of them are. */
static int parent_state(plan *pl, int i, int *complete)
{
    redlock__batch *pb = &pl->pb[i];
    int failed = 0;
    *complete = 1;
    for (int q = 0; q < pl->np; q++) {
        if (pl->p[q].parent != i)
            continue;
        if (pl->b[q].st != REDLOCK_OK && !failed) {
            failed = 1;
            pb->st = pl->b[q].st;
            snprintf(pb->err, sizeof pb->err, "%s", pl->b[q].err);
        }
        *complete &= redlock__batch_complete(&pl->b[q]);
    }
    return failed;
}

/* Some part of cluster batch i has all its replies. */
static int some_part_complete(const plan *pl, int i)
{
    for (int q = 0; q < pl->np; q++)
        if (pl->p[q].parent == i && redlock__batch_complete(&pl->b[q]))
            return 1;
    return 0;
}

/* The caller's decider, asked about the batches as they stand; and, when
 * it cannot decide only because some masters of a cluster are still
 * silent while its other masters answered (and every other node is
 * through), decided too: the silent masters then get io.c's grace, not
 * the deadline, as a silent minority of nodes does.  Their calls fail
 * (no answer, uncertain), which costs the locks on those masters only:
 * without this, one stalled master made every renewal that spans the
 * cluster wait for it, and the locks on the healthy masters ran out. */
static int decided(const redlock__batch *b, int n, void *arg)
{
    (void)b;
    (void)n;
    plan *pl = arg;
    int done = 0, finished = 0, waiting = 0, stalled = 0;
    gather(pl, 0);
    for (int i = 0; i < pl->n; i++) {
        redlock__batch *pb = &pl->pb[i];
        int complete;
        if (pb->ncalls == 0 || pb->st != REDLOCK_OK) {
            finished += pb->ncalls > 0 || pb->st != REDLOCK_OK;
            continue;
        }
        if (parent_state(pl, i, &complete)) {
            finished++;
        } else if (complete) {
            done++;
            finished++;
        } else if (pb->node->cluster && some_part_complete(pl, i)) {
            stalled++;
        } else {
            waiting++;
        }
    }
    if (done >= pl->d->quorum && finished < pl->n &&
        pl->d->decided(pl->pb, pl->n, pl->d->arg))
        return 1;
    return stalled > 0 && waiting == 0;
}

/* Follow the redirections of the parts from `from` on: a new round of
 * parts, or 0 when there is nothing to follow. */
static int redirect(plan *pl, int from, int round, int64_t deadline_ns)
{
    int to = pl->np, any = 0, retry = 0;
    for (int q = from; q < to; q++) {
        part *p = &pl->p[q];
        redlock__batch *b = &pl->b[q], *pb = &pl->pb[p->parent];
        if (!p->idx || b->st != REDLOCK_OK)
            continue;
        redlock__node *n = pb->node, *last = NULL;
        for (int j = 0; j < b->ncalls; j++) {
            redlock__call *c = &b->calls[j];
            int kind = redirect_kind(c->reply);
            if (p->idx[j] < 0 || is_wait(c))
                continue;
            if (kind == R_NONE && !(last && redlock__call_slot(c) < 0))
                continue;
            redlock__node *target = last;
            int ask = 0;
            if (kind == R_MOVED || kind == R_ASK) {
                char host[256];
                unsigned slot;
                int port;
                int want = redlock__call_slot(c);
                if (parse_redirect(c->reply, b->node, &slot, host, sizeof host,
                                   &port) != 0 ||
                    (want >= 0 && (unsigned)want != slot))
                    continue; /* a lying server: its error stands */
                target = kind == R_MOVED
                             ? redlock__cluster_moved(n, slot, host, port)
                             : redlock__cluster_shard(n, host, port);
                ask = kind == R_ASK;
            } else if (kind == R_RETRY) {
                target = b->node;
                retry = 1;
            }
            if (!target)
                continue; /* out of memory: the error stands */
            int k = find_part(pl, to, p->parent, target);
            if (k < 0) {
                k = new_part(pl, p->parent, target, 2 * pb->ncalls + 2);
                if (k < 0)
                    goto parts_done; /* the error replies stand */
                /* new_part may have moved the arrays */
                p = &pl->p[q];
                b = &pl->b[q];
                c = &b->calls[j];
            }
            if (ask) {
                static const redlock__call asking = {
                    .argc = 1, .argv = {"ASKING"}, .argvlen = {6}};
                add_call(pl, k, &asking, -1);
            }
            add_call(pl, k, c, p->idx[j]);
            pl->b[k].calls[pl->b[k].ncalls - 1].eval |= (unsigned char)ask;
            redlock__reply_free(c->reply);
            c->reply = NULL;
            last = target;
            any = 1;
        }
        /* A part whose calls all went elsewhere: its WAIT counted nothing
         * of ours (a demoted master even refuses it, "WAIT cannot be used
         * with replica instances"), and must not count against the copies
         * that follow the calls. */
        int kept = 0;
        for (int j = 0; j < b->ncalls; j++)
            kept |= p->idx[j] >= 0 && !is_wait(&b->calls[j]) &&
                    b->calls[j].reply != NULL;
        for (int j = 0; !kept && last && j < b->ncalls; j++)
            if (p->idx[j] >= 0 && is_wait(&b->calls[j])) {
                redlock__reply_free(b->calls[j].reply);
                b->calls[j].reply = NULL;
                p->idx[j] = -3; /* ignored by gather */
            }
    }
parts_done:
    /* Each new part: the batch's WAIT, then the map when a MOVED asked. */
    for (int k = to; k < pl->np; k++) {
        redlock__batch *pb = &pl->pb[pl->p[k].parent];
        for (int j = 0; j < pb->ncalls; j++)
            if (is_wait(&pb->calls[j]))
                add_call(pl, k, &pb->calls[j], j);
        if (redlock__cluster_want_map(pb->node)) {
            static const redlock__call slots = {
                .argc = 2, .argv = {"CLUSTER", "SLOTS"}, .argvlen = {7, 5}};
            add_call(pl, k, &slots, -2);
        }
    }
    if (retry) { /* a pause, growing with the rounds, within the deadline */
        int64_t pause = (int64_t)5000000 << round, now = redlock__now_ns();
        if (now + pause > deadline_ns)
            pause = (deadline_ns - now) / 2;
        if (pause > 0)
            redlock__sleep_until_ns(now + pause);
    }
    return any;
}

void redlock__cluster_exchange(redlock__batch *b, int n, int64_t deadline_ns,
                               const redlock__decider *d)
{
    plan pl = {.pb = b, .n = n, .d = d};
    for (int i = 0; i < n; i++) {
        redlock__batch *pb = &b[i];
        pb->st = REDLOCK_OK;
        pb->uncertain = 0;
        pb->partial = 0;
        pb->err[0] = '\0';
        pb->conn = NULL;
        pb->subs = NULL;
        pb->nsubs = 0;
        if (pb->ncalls == 0)
            continue;
        if (pb->node->cluster) {
            split(&pl, i, deadline_ns);
        } else {
            int k = new_part(&pl, i, pb->node, 0);
            if (k < 0) {
                fail_parent(pb, redlock__fail(REDLOCK_NOMEM, "out of memory"));
                continue;
            }
            pl.b[k].calls = pb->calls;
            pl.b[k].ncalls = pb->ncalls;
        }
    }
    /* Only masters that stopped answering lately, tried again: the
     * exchange is a probe, and a healthy master answers in far less than
     * a quarter of the node's budget.  Waiting the whole budget for a
     * master still stalled would hold up the caller (the watchdog, whose
     * renewals of locks on the other masters wait behind it). */
    int probe = pl.np > 0;
    for (int q = 0; q < pl.np; q++)
        probe &= pl.p[q].idx != NULL && atomic_load(&pl.b[q].node->slow);
    if (probe) {
        const redlock_options *o = pl.b[0].node->opts;
        int64_t quarter = (int64_t)(o->node_timeout_ms ? o->node_timeout_ms
                                                       : o->io_timeout_ms) *
                          250000;
        if (redlock__now_ns() + quarter < deadline_ns)
            deadline_ns = redlock__now_ns() + quarter;
    }
    redlock__decider wrap = {.quorum = 1, .decided = decided, .arg = &pl,
                             .ask_all = d ? d->ask_all : 0};
    redlock__exchange_plain(pl.b, pl.np, deadline_ns, d ? &wrap : NULL);
    for (int round = 0, from = 0; round < MAX_ROUNDS; round++) {
        int to = pl.np;
        if (redlock__now_ns() >= deadline_ns ||
            !redirect(&pl, from, round, deadline_ns))
            break;
        redlock__exchange_plain(pl.b + to, pl.np - to, deadline_ns, NULL);
        from = to;
    }

    gather(&pl, 1);
    /* Every connection a batch used stays with it until batches_clear:
     * its replies may live in the connections' arenas. */
    for (int i = 0; i < n; i++) {
        int count = 0;
        for (int q = 0; q < pl.np; q++)
            count += pl.p[q].parent == i && pl.p[q].idx;
        if (count && !(b[i].subs = calloc((size_t)count, sizeof *b[i].subs)))
            fail_parent(&b[i], redlock__fail(REDLOCK_NOMEM, "out of memory"));
    }
    for (int q = 0; q < pl.np; q++) {
        part *p = &pl.p[q];
        redlock__batch *pq = &pl.b[q], *pb = &b[p->parent];
        if (pq->st != REDLOCK_OK && pb->st == REDLOCK_OK) {
            pb->st = pq->st;
            snprintf(pb->err, sizeof pb->err, "%s", pq->err);
        }
        pb->uncertain |= pq->uncertain;
        if (!p->idx) { /* a plain node: its one connection */
            pb->conn = pq->conn;
            continue;
        }
        for (int j = 0; j < pq->ncalls; j++) {
            if (p->idx[j] == -2 && pq->calls[j].reply)
                redlock__cluster_map(pb->node, pq->node, pq->calls[j].reply);
            redlock__reply_free(pq->calls[j].reply); /* ASKING, SLOTS */
            pq->calls[j].reply = NULL;
        }
        if (pb->subs) {
            pb->subs[pb->nsubs++] = (redlock__subconn){
                pq->node, pq->conn, pq->st != REDLOCK_OK};
        } else { /* out of memory: no reply may stay in its arena */
            for (int k = 0; k < pb->ncalls; k++) {
                redlock__reply_free(pb->calls[k].reply);
                pb->calls[k].reply = NULL;
            }
            redlock__node_put(pq->node, pq->conn, 1);
        }
        pq->conn = NULL;
        free(p->calls);
        free(p->idx);
    }
    for (int i = 0; i < n; i++)
        if (b[i].node->cluster && b[i].st != REDLOCK_OK)
            for (int k = 0; k < b[i].ncalls && !b[i].partial; k++)
                b[i].partial = b[i].calls[k].reply != NULL;
    free(pl.b);
    free(pl.p);
}
