/*
 * Locks: acquire (with waiting), extend, release, adopt, inspect, and the
 * handle's accessors.  Every operation runs on all nodes at once through
 * redlock__exchange and is decided by counting answers against the quorum;
 * one node is simply a quorum of one.
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How the nodes answered one lock's command. */
typedef struct tally {
    int yes;    /* did what we asked */
    int no;     /* another token holds it (or nothing does) */
    int failed; /* no usable answer: I/O, error reply, too few replicas */
    int placed; /* our key may now exist there (acquire) */
    redlock_status err;  /* first failure other than I/O, else IO */
    char detail[256];    /* the first failure */
} tally;

static void tally_fail(tally *t, redlock_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void tally_fail(tally *t, redlock_status st, const char *fmt, ...)
{
    t->failed++;
    if (t->err == REDLOCK_OK || (t->err == REDLOCK_IO && st != REDLOCK_IO)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->detail, sizeof t->detail, fmt, ap);
        va_end(ap);
        t->err = st;
    }
}

static void set_arg(redlock__call *c, const char *s, size_t len)
{
    c->argv[c->argc] = s;
    c->argvlen[c->argc++] = len;
}

/* One call per node: b[i] holds calls[i] for node i. */
static void one_call_each(const redlock_client *c, redlock__batch *b,
                          redlock__call *calls)
{
    memset(calls, 0, sizeof calls[0] * (size_t)c->nnodes);
    memset(b, 0, sizeof b[0] * (size_t)c->nnodes);
    for (int i = 0; i < c->nnodes; i++) {
        b[i].node = &c->nodes[i];
        b[i].calls = &calls[i];
        b[i].ncalls = 1;
    }
}

/* The release script's call for l; own: see redlock__notify_draining.
 * With the queue it names the queue (and the fence counter, so that the
 * waiter it hands the lock to gets the next number). */
static void release_call(redlock__call *cl, const redlock_lock *l, int own)
{
    if (l->qkey)
        cl->script = l->fkey ? &redlock__script_release_queued_fenced
                             : &redlock__script_release_queued;
    else
        cl->script = &redlock__script_release;
    set_arg(cl, l->key, l->keylen);
    if (l->qkey)
        set_arg(cl, l->qkey, l->qkeylen);
    if (l->fkey)
        set_arg(cl, l->fkey, l->fkeylen);
    set_arg(cl, l->token, strlen(l->token));
    set_arg(cl, REDLOCK__HANDOFF_MS, strlen(REDLOCK__HANDOFF_MS));
    set_arg(cl, own ? "1" : "0", 1);
    if (l->schan) /* a cluster's: its shard channel */
        set_arg(cl, l->schan, l->schanlen);
}

static int64_t op_deadline_ns(const redlock_client *c)
{
    return redlock__now_ns() + (int64_t)c->opts.node_timeout_ms * 1000000;
}

/* WAIT's own timeout: half the node's budget, so that its answer still
 * arrives within the exchange's deadline. */
static void add_wait(const redlock_client *c, redlock__call *call,
                     char *nbuf, char *tbuf)
{
    int t = c->opts.node_timeout_ms / 2;
    set_arg(call, "WAIT", 4);
    set_arg(call, nbuf, redlock__fmt_i64(nbuf, c->opts.min_replicas));
    set_arg(call, tbuf, redlock__fmt_i64(tbuf, t > 0 ? t : 1));
}

/* 1 when the node's reply to WAIT shows enough replicas. */
static int replicas_ok(const redlock_client *c, const redisReply *r,
                       tally *t, const redlock__node *n)
{
    if (r && r->type == REDIS_REPLY_INTEGER &&
        r->integer >= c->opts.min_replicas)
        return 1;
    if (r && r->type == REDIS_REPLY_ERROR)
        tally_fail(t, redlock__reply_error_status(r), "%s: WAIT: %s",
                   n->name, r->str);
    else
        tally_fail(t, REDLOCK_IO, "%s: %lld of %d replicas acknowledged",
                   n->name, r ? r->integer : 0LL, c->opts.min_replicas);
    return 0;
}

/* The status and message of a decided operation that did not succeed. */
static redlock_status verdict(const redlock_client *c, const tally *t,
                              redlock_status busy, const char *what,
                              const char *key)
{
    if (t->no > c->nnodes - c->quorum) {
        if (c->nnodes == 1)
            return redlock__fail(busy, "%s \"%.80s\": %s", what, key,
                                 busy == REDLOCK_BUSY
                                     ? "held by another token"
                                     : "our token does not hold it");
        return redlock__fail(busy,
                             "%s \"%.80s\": %d of %d nodes said yes, %d no, "
                             "%d failed; %d needed",
                             what, key, t->yes, c->nnodes, t->no, t->failed,
                             c->quorum);
    }
    redlock_status st = t->err == REDLOCK_OK ? REDLOCK_IO : t->err;
    if (c->nnodes == 1)
        return redlock__fail(st, "%s \"%.80s\": %s", what, key, t->detail);
    return redlock__fail(st,
                         "%s \"%.80s\": %d of %d nodes said yes, %d no, %d "
                         "failed; %d needed (%s)",
                         what, key, t->yes, c->nnodes, t->no, t->failed,
                         c->quorum, t->detail);
}

/* ---- handles ----------------------------------------------------------- */

/* Handles live in handles.c, with the identity rules of deleting. */
#define handle_new redlock__handle_new
#define handle_free redlock__handle_free

void redlock__mark_lost(redlock_lock *l)
{
    atomic_store(&l->validity_end_ms, 0);
    atomic_store(&l->held, 0);
}

static redlock_status check_key(const char *key)
{
    if (!key)
        return redlock__fail(REDLOCK_INVALID, "key is NULL");
    if (!*key)
        return redlock__fail(REDLOCK_INVALID, "key is empty");
    return REDLOCK_OK;
}

static redlock_status check_token(const char *token)
{
    if (!token || !*token)
        return redlock__fail(REDLOCK_INVALID, "token is %s",
                             token ? "empty" : "NULL");
    size_t len = strlen(token);
    if (len > REDLOCK_TOKEN_MAX)
        return redlock__fail(REDLOCK_INVALID,
                             "token of %zu bytes is longer than "
                             "REDLOCK_TOKEN_MAX (%d)",
                             len, REDLOCK_TOKEN_MAX);
    if (strcmp(token, REDLOCK__HANDOFF_VALUE) == 0)
        return redlock__fail(REDLOCK_INVALID,
                             "token \"%s\" is reserved for the handoff",
                             token);
    return REDLOCK_OK;
}

/* A ttl whose drift allowance eats all of it could never be held: every
 * acquire would "succeed" on the nodes and fail with no validity left. */
static redlock_status check_ttl(const redlock_client *c, int64_t ttl_ms)
{
    if (ttl_ms < 1 || ttl_ms > REDLOCK_TTL_MAX)
        return redlock__fail(REDLOCK_INVALID,
                             "ttl_ms %" PRId64 " is outside 1..%" PRId64,
                             ttl_ms, REDLOCK_TTL_MAX);
    int64_t drift = redlock__drift_ms(ttl_ms, c->opts.drift_factor);
    if (ttl_ms <= drift) {
        int64_t min = ttl_ms + 1;
        while (min <= redlock__drift_ms(min, c->opts.drift_factor))
            min++;
        return redlock__fail(REDLOCK_INVALID,
                             "ttl_ms %" PRId64 " leaves no validity after "
                             "the clock drift allowance of %" PRId64
                             " ms; the smallest usable ttl is %" PRId64
                             " ms",
                             ttl_ms, drift, min);
    }
    return REDLOCK_OK;
}

/* ---- acquire ----------------------------------------------------------- */

/* Delete our token where this attempt may have placed it (placed[]: it
 * said so, or answered something else than a plain no), now on the nodes
 * that answered, later (as a ghost) on those that did not, so that a failed
 * attempt neither waits out a stalled node twice nor leaves a lock.  A node
 * that answered "already ours" is left alone: the key was this token's
 * before the attempt.  So is one that did not answer, unless the token is
 * fresh (made for this try): a caller's token may have been there before,
 * held by another process, and its key expires with its ttl.  Nothing at all is deleted while another handle of
 * this client holds or takes the same token: the key is theirs too.
 * (model rule undo_acquire) */
static void undo_acquire(redlock_client *c, redlock_lock *l, int fresh,
                         const redlock__batch *acq, const char *placed)
{
    if (!redlock__handle_begin_delete(l, 0))
        return;
    redlock__call calls[REDLOCK_MAX_NODES];
    redlock__batch b[REDLOCK_MAX_NODES];
    int own = !l->qkey && redlock__notify_draining(c, l->key, l->keylen);
    one_call_each(c, b, calls);
    for (int i = 0; i < c->nnodes; i++) {
        b[i].ncalls = 0;
        if (acq[i].st != REDLOCK_OK) {
            if (acq[i].uncertain && fresh)
                redlock__node_add_ghost(&c->nodes[i], l->key, l->keylen,
                                        l->token);
        } else if (placed[i]) {
            b[i].ncalls = 1;
            release_call(&calls[i], l, own);
        }
    }
    redlock__exchange(b, c->nnodes, op_deadline_ns(c));
    for (int i = 0; i < c->nnodes; i++)
        if (b[i].ncalls && b[i].st != REDLOCK_OK)
            redlock__node_add_ghost(&c->nodes[i], l->key, l->keylen,
                                    l->token);
    redlock__batches_clear(b, c->nnodes);
    redlock__handle_end_delete(l);
}

/* A key of another type answers SET NX with nil, like a held lock; say so
 * rather than wait for it forever.  Asked only of the nodes that said no
 * (never again of one that just failed), within the try's own deadline. */
static redlock_status check_type(redlock_client *c, const char *key,
                                 size_t keylen, const char *said_no,
                                 int64_t deadline_ns)
{
    redlock__call calls[REDLOCK_MAX_NODES];
    redlock__batch b[REDLOCK_MAX_NODES];
    if (redlock__now_ns() >= deadline_ns)
        return REDLOCK_OK;
    one_call_each(c, b, calls);
    for (int i = 0; i < c->nnodes; i++) {
        b[i].ncalls = said_no[i] ? 1 : 0;
        set_arg(&calls[i], "TYPE", 4);
        set_arg(&calls[i], key, keylen);
    }
    redlock__exchange(b, c->nnodes, deadline_ns);
    redlock_status st = REDLOCK_OK;
    for (int i = 0; i < c->nnodes && st == REDLOCK_OK; i++) {
        redisReply *r = calls[i].reply;
        if (!b[i].ncalls || b[i].st != REDLOCK_OK || !r ||
            r->type != REDIS_REPLY_STATUS)
            continue;
        if (strcmp(r->str, "string") != 0 && strcmp(r->str, "none") != 0)
            st = redlock__fail(REDLOCK_SERVER,
                               "%s: key \"%.80s\" holds a %s, not a lock",
                               c->nodes[i].name, key, r->str);
    }
    redlock__batches_clear(b, c->nnodes);
    return st;
}

/* How one try went, beyond its status. */
typedef struct attempt {
    int64_t validity_end, fence;
    int64_t pttl_hint; /* smallest ttl among the nodes that said no, or -1 */
    char said_no[REDLOCK_MAX_NODES];
} attempt;

/* What acquire_decided needs to read an attempt's replies. */
typedef struct acq_ctx {
    const redlock_client *c;
    int wait_at; /* index of the WAIT call, 0 when none */
} acq_ctx;

/* The answers in so far settle the attempt: a quorum placed it (or had it
 * already), or too many refused for a quorum.  A silent node then changes
 * nothing, and the try need not wait for it (a stalled minority costs no
 * latency).  Anything else than a plain answer counts as neither. */
static int acquire_decided(const redlock__batch *b, int n, void *arg)
{
    const acq_ctx *x = arg;
    int q = x->c->quorum, yes = 0, no = 0;
    for (int i = 0; i < n; i++) {
        const redisReply *r = b[i].calls[0].reply;
        if (b[i].st != REDLOCK_OK || !r)
            continue;
        if (r->type == REDIS_REPLY_NIL ||
            (r->type == REDIS_REPLY_INTEGER && r->integer == 0)) {
            no++;
        } else if ((r->type == REDIS_REPLY_STATUS &&
                    strcmp(r->str, "OK") == 0) ||
                   (r->type == REDIS_REPLY_INTEGER && r->integer != 0)) {
            const redisReply *w =
                x->wait_at ? b[i].calls[x->wait_at].reply : NULL;
            if (!x->wait_at || (w && w->type == REDIS_REPLY_INTEGER &&
                                w->integer >= x->c->opts.min_replicas))
                yes++;
        }
    }
    return yes >= q || no > n - q;
}

/* One try on every node, by deadline_ns.  plain: SET NX PX, for a token
 * that is new (nobody can hold it yet) and no fence; else the acquire
 * script, which also recognizes a re-acquire by the same token and, for a
 * waiter (as_waiter), takes a key handed off to waiters.  want_hint: also
 * ask how long the holder has left.  fresh: the token was made for this
 * try.  (model rules a1_acquire_as, a2_reacquire, b_acquire) */
static redlock_status acquire_once(redlock_client *c, redlock_lock *l,
                                   int64_t ttl_ms, int fresh, int plain,
                                   int as_waiter, int want_hint,
                                   int64_t deadline_ns, attempt *out)
{
    redlock__call calls[REDLOCK_MAX_NODES][3];
    redlock__batch b[REDLOCK_MAX_NODES];
    char ttl[24], nrep[16], tmo[16];
    size_t ttllen = redlock__fmt_i64(ttl, ttl_ms);
    size_t toklen = strlen(l->token);
    const char *key = l->key;
    size_t keylen = l->keylen;
    char *fkey = NULL;
    size_t fkeylen = 0;
    int wait_at = c->opts.min_replicas > 0 ? 1 : 0;
    int pttl_at = want_hint ? wait_at + 1 : 0;
    int per = 1 + (wait_at > 0) + (pttl_at > 0);
    char placed[REDLOCK_MAX_NODES];

    if (c->opts.fencing) {
        fkey = malloc(keylen + REDLOCK__NAME_EXTRA);
        if (!fkey)
            return redlock__fail(REDLOCK_NOMEM, "out of memory");
        fkeylen = redlock__derived_name(c, key, keylen, REDLOCK__FENCE_SUFFIX,
                                        fkey);
        plain = 0;
    }
    memset(calls, 0, sizeof calls[0] * (size_t)c->nnodes);
    memset(b, 0, sizeof b[0] * (size_t)c->nnodes);
    memset(placed, 0, sizeof placed);
    memset(out->said_no, 0, sizeof out->said_no);
    for (int i = 0; i < c->nnodes; i++) {
        redlock__call *cl = &calls[i][0];
        if (!plain) {
            cl->script = fkey ? &redlock__script_acquire_fenced
                              : &redlock__script_acquire;
            set_arg(cl, key, keylen);
            if (fkey)
                set_arg(cl, fkey, fkeylen);
            set_arg(cl, l->token, toklen);
            set_arg(cl, ttl, ttllen);
            set_arg(cl, as_waiter ? "1" : "0", 1);
        } else {
            set_arg(cl, "SET", 3);
            set_arg(cl, key, keylen);
            set_arg(cl, l->token, toklen);
            set_arg(cl, "NX", 2);
            set_arg(cl, "PX", 2);
            set_arg(cl, ttl, ttllen);
        }
        if (wait_at)
            add_wait(c, &calls[i][wait_at], nrep, tmo);
        if (pttl_at) {
            set_arg(&calls[i][pttl_at], "PTTL", 4);
            set_arg(&calls[i][pttl_at], key, keylen);
        }
        b[i].node = &c->nodes[i];
        b[i].calls = calls[i];
        b[i].ncalls = per;
    }

    uint64_t seq = fresh ? 0 : redlock__handle_seq(c);
    int64_t start = redlock__now_ms();
    acq_ctx x = {c, wait_at};
    redlock__decider d = {c->quorum, acquire_decided, &x, 0};
    redlock__exchange_until(b, c->nnodes, deadline_ns,
                            c->nnodes > 1 ? &d : NULL);

    tally t;
    memset(&t, 0, sizeof t);
    int64_t got_fence = 0, hint = -1;
    int absent = 0;
    for (int i = 0; i < c->nnodes; i++) {
        redisReply *r = calls[i][0].reply;
        if (b[i].st != REDLOCK_OK) {
            tally_fail(&t, b[i].st, "%s", b[i].err);
            continue;
        }
        /* SET answers +OK or nil; the script an integer: > 0 placed, < 0
         * already ours, 0 refused. */
        if (r->type == REDIS_REPLY_ERROR) {
            placed[i] = 1; /* a lying server may have set it anyway */
            tally_fail(&t, redlock__reply_error_status(r), "%s: %s",
                       b[i].node->name, r->str);
        } else if (!plain ? r->type != REDIS_REPLY_INTEGER
                          : r->type != REDIS_REPLY_NIL &&
                                !(r->type == REDIS_REPLY_STATUS &&
                                  strcmp(r->str, "OK") == 0)) {
            placed[i] = 1; /* ditto */
            tally_fail(&t, REDLOCK_SERVER, "%s: unexpected reply type (%s)",
                       b[i].node->name, redlock__reply_type_name(r->type));
        } else if (r->type == REDIS_REPLY_STATUS || r->integer != 0) {
            if (r->type == REDIS_REPLY_STATUS || r->integer > 0) {
                placed[i] = 1;
                t.placed++;
                absent++;
            }
            if (r->type == REDIS_REPLY_INTEGER && fkey)
                got_fence = r->integer > 0 ? r->integer : -r->integer;
            if (!wait_at ||
                replicas_ok(c, calls[i][wait_at].reply, &t, b[i].node))
                t.yes++;
        } else {
            t.no++;
            absent++;
            out->said_no[i] = 1;
            redisReply *p = pttl_at ? calls[i][pttl_at].reply : NULL;
            if (p && p->type == REDIS_REPLY_INTEGER && p->integer >= 0 &&
                (hint < 0 || p->integer < hint))
                hint = p->integer;
        }
    }
    out->pttl_hint = hint;
    /* Nodes that said our token was not there (they placed it, or another
     * holds the key) leave it on less than a quorum: a handle of this
     * token that believes it holds is wrong, and must be told. */
    if (!fresh && absent > c->nnodes - c->quorum)
        redlock__handle_siblings_lost(l, seq);
    redlock_status st = REDLOCK_OK;
    int64_t vend = redlock__validity_end_ms(start, ttl_ms,
                                            c->opts.drift_factor);
    if (t.yes >= c->quorum && vend > redlock__now_ms()) {
        out->validity_end = vend;
        out->fence = got_fence;
    } else if (t.yes >= c->quorum) {
        st = redlock__fail(REDLOCK_IO,
                           "acquire \"%.80s\": quorum took longer than the "
                           "validity of a %" PRId64 " ms ttl",
                           key, ttl_ms);
    } else if (t.no > 0 && t.yes + t.no >= c->quorum &&
               t.no <= c->nnodes - c->quorum &&
               (fresh || !redlock__handle_has_holder(l))) {
        /* A split vote among a quorum that answered (1 yes, 1 no, 1
         * failed): another token holds the key on a node we heard from,
         * so it is busy, whatever the silent node would have said.  A wait
         * retries it like any busy key.  (Not while another handle of our
         * token holds it: then the silent node decides, and it is IO.) */
        st = redlock__fail(REDLOCK_BUSY,
                           "acquire \"%.80s\": %d of %d nodes said yes, %d "
                           "no, %d failed; %d needed",
                           key, t.yes, c->nnodes, t.no, t.failed, c->quorum);
    } else {
        st = verdict(c, &t, REDLOCK_BUSY, "acquire", key);
    }
    /* Connections back first, so that the undo can reuse them; it reads
     * only each batch's outcome (st, uncertain), which clearing keeps. */
    redlock__batches_clear(b, c->nnodes);
    if (st != REDLOCK_OK && (t.placed > 0 || t.failed > 0)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", redlock_last_error());
        undo_acquire(c, l, fresh, b, placed);
        redlock__fail(st, "%s", msg); /* the attempt's, not the undo's */
    }
    free(fkey);
    return st;
}

/* Sleep until the next try is worth making, but not past until_ns: a
 * release notification (w), or else a timed fallback.  With notifications
 * live the fallback only covers a holder that vanished (its key expires
 * after pttl_hint) and a lost message; without them it is the jittered
 * retry delay. */
static void wait_turn(redlock_client *c, redlock__watch *w, uint64_t *seen,
                      int64_t pttl_hint, int64_t until_ns)
{
    int64_t delay_ms = redlock__jitter_ms(c->opts.retry_delay_ms);
    if (w && redlock__notify_live(c, w)) {
        delay_ms = redlock__jitter_ms(1000);
        if (pttl_hint >= 0 && pttl_hint + 1 < delay_ms)
            delay_ms = pttl_hint + 1;
    }
    int64_t wake = redlock__now_ns() + delay_ms * 1000000;
    if (wake > until_ns)
        wake = until_ns;
    if (w)
        redlock__notify_wait(c, w, seen, wake);
    else
        redlock__sleep_until_ns(wake);
}

/* What a wait rides out: a busy key, and failures that pass by themselves
 * (a node unreachable, timed out, restarting with -LOADING, running a
 * -BUSY script, -MASTERDOWN, -TRYAGAIN: all REDLOCK_IO).  A refused
 * password, a bad argument, a key of another type or a lack of memory end
 * it at once. */
static int retryable(redlock_status st)
{
    return st == REDLOCK_BUSY || st == REDLOCK_IO;
}

/* own_token: the token is new (redlock_acquire), so each try gets a new
 * one: a ghost delete owed for an earlier try (a node that timed out) can
 * then never match, and delete, the lock a later try took; and the first
 * try can be a plain SET NX.  A caller's token is claimed before each try
 * instead (redlock__handle_claim). */
redlock_status redlock__acquire_args(redlock_client *c, const char *key,
                                     int64_t ttl_ms, int64_t wait_ms,
                                     redlock_lock **lock, int64_t *until_ns)
{
    redlock_status st;
    if (lock)
        *lock = NULL;
    redlock__clear_error();
    if (!c)
        return redlock__fail(REDLOCK_INVALID, "client is NULL");
    if (!lock)
        return redlock__fail(REDLOCK_INVALID, "lock out-pointer is NULL");
    if ((st = check_key(key)) != REDLOCK_OK ||
        (st = check_ttl(c, ttl_ms)) != REDLOCK_OK)
        return st;
    /* A lock's other keys (fence counter, queue) and, on a cluster, its
     * release channel share its slot. */
    if ((st = redlock__check_derived(c, key, strlen(key))) != REDLOCK_OK)
        return st;
    if (wait_ms < REDLOCK_WAIT_FOREVER)
        return redlock__fail(REDLOCK_INVALID,
                             "wait_ms %" PRId64 " is negative (use 0, > 0 or "
                             "REDLOCK_WAIT_FOREVER)",
                             wait_ms);
    /* A wait too long to count in nanoseconds is a wait forever. */
    int64_t now = redlock__now_ns();
    *until_ns = wait_ms == REDLOCK_WAIT_FOREVER ||
                        wait_ms > (INT64_MAX - now) / 1000000
                    ? INT64_MAX
                    : now + wait_ms * 1000000;
    return REDLOCK_OK;
}

void redlock__acquired(redlock_lock *l, int64_t ttl_ms, int64_t validity_end,
                       int64_t fence)
{
    l->ttl_ms = ttl_ms;
    l->acquired_ms = redlock__now_ms();
    l->fence = fence;
    atomic_store(&l->validity_end_ms, validity_end);
    redlock__handle_held(l);
}

redlock_status redlock__attempt(redlock_client *c, redlock_lock *l,
                                int64_t ttl_ms, int as_waiter,
                                int64_t deadline_ns, int64_t *validity_end,
                                int64_t *pttl_hint)
{
    attempt at = {.pttl_hint = -1};
    redlock_status st =
        acquire_once(c, l, ttl_ms, 1, 0, as_waiter, 1, deadline_ns, &at);
    *validity_end = at.validity_end;
    *pttl_hint = at.pttl_hint;
    return st;
}

static redlock_status acquire(redlock_client *c, const char *key,
                              const char *token, int own_token,
                              int64_t ttl_ms, int64_t wait_ms,
                              redlock_lock **lock)
{
    redlock_status st;
    int64_t until;
    if ((st = redlock__acquire_args(c, key, ttl_ms, wait_ms, lock, &until)) !=
        REDLOCK_OK)
        return st;
    size_t keylen = strlen(key);
    redlock_lock *l = handle_new(c, key, keylen, token);
    if (!l)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    attempt at = {.pttl_hint = -1};
    redlock__watch *w = NULL;
    uint64_t seen = 0;
    int checked_type = 0;
    /* One node: wait in the queue, where a release hands the lock over
     * (queue.c); the first try already takes a place in it. */
    if (c->queued && wait_ms != 0)
        st = redlock__queue_wait(c, l, ttl_ms, own_token, until,
                                 &at.validity_end, &at.fence);
    for (int tries = 0; !(c->queued && wait_ms != 0); tries++) {
        if (tries > 0 && own_token &&
            (st = redlock__handle_retoken(l)) != REDLOCK_OK)
            break;
        /* One bound for the whole try: claim, exchange, type check. */
        int64_t deadline = op_deadline_ns(c);
        if (!own_token && redlock__handle_claim(l, deadline) != 0)
            st = REDLOCK_IO;
        else
            st = acquire_once(c, l, ttl_ms, own_token,
                              own_token && tries == 0, tries > 0,
                              wait_ms != 0, deadline, &at);
        if (st == REDLOCK_OK)
            break;
        if (st == REDLOCK_BUSY && !checked_type) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", redlock_last_error());
            checked_type = 1;
            if (check_type(c, key, keylen, at.said_no, deadline) !=
                REDLOCK_OK) {
                st = REDLOCK_SERVER;
                break;
            }
            redlock__fail(st, "%s", msg);
        }
        if (!retryable(st) || wait_ms == 0 || redlock__now_ns() >= until)
            break;
        if (st == REDLOCK_BUSY) {
            if (!w)
                w = redlock__notify_watch(c, key, keylen, &seen);
            wait_turn(c, w, &seen, at.pttl_hint, until);
        } else {
            /* A failure: no release will be published for it. */
            int64_t wake = redlock__now_ns() +
                           redlock__jitter_ms(c->opts.retry_delay_ms) *
                               1000000;
            redlock__sleep_until_ns(wake < until ? wake : until);
        }
    }
    if (w)
        redlock__notify_unwatch(c, w);
    if (st != REDLOCK_OK) {
        if (st == REDLOCK_BUSY && wait_ms > 0)
            redlock__fail(st,
                          "acquire \"%.80s\": still held by another token "
                          "after waiting %" PRId64 " ms",
                          key, wait_ms);
        handle_free(l);
        return st;
    }
    redlock__acquired(l, ttl_ms, at.validity_end, at.fence);
    *lock = l;
    return REDLOCK_OK;
}

redlock_status redlock_acquire(redlock_client *c, const char *key,
                               int64_t ttl_ms, int64_t wait_ms,
                               redlock_lock **lock)
{
    char token[REDLOCK__OWN_TOKEN_MAX];
    if (lock)
        *lock = NULL;
    if (!c) /* (reported by acquire) */
        return acquire(c, key, "", 1, ttl_ms, wait_ms, lock);
    redlock_status st = redlock__own_token(c, token);
    if (st != REDLOCK_OK)
        return st;
    return acquire(c, key, token, 1, ttl_ms, wait_ms, lock);
}

redlock_status redlock_acquire_as(redlock_client *c, const char *key,
                                  const char *token, int64_t ttl_ms,
                                  int64_t wait_ms, redlock_lock **lock)
{
    if (lock)
        *lock = NULL;
    redlock_status st = check_token(token);
    if (st != REDLOCK_OK)
        return st;
    return acquire(c, key, token, 0, ttl_ms, wait_ms, lock);
}

/* ---- extend and release, many locks at once ---------------------------- */

/* Room for one script call per lock on every node, plus a WAIT. */
typedef struct multi {
    redlock__batch b[REDLOCK_MAX_NODES];
    redlock__call *calls; /* [node][stride] */
    int stride;
    tally *t;             /* [lock] */
    char (*num)[24];      /* [lock]: ttl arguments */
    redlock__call one_calls[REDLOCK_MAX_NODES * 2];
    tally one_tally;
    char one_num[1][24];
    char nrep[16], tmo[16];
    const redlock_client *c;
    int nlocks;
    redlock__decider decider; /* multi_decided */
} multi;

/* The reply node b gave to call k, or NULL for none: a cluster's batch
 * that some of its masters did not answer is partial, and the calls the
 * others answered count (one master down must not fail the renewals of
 * every lock on the cluster). */
static const redisReply *answer(const redlock__batch *b, int k)
{
    if (b->ncalls == 0 || (b->st != REDLOCK_OK && !b->partial))
        return NULL;
    return b->calls[k].reply;
}

/* The answers in so far settle every lock: a quorum said yes, or too many
 * said no for a quorum.  Nodes still silent then change nothing, and the
 * exchange need not wait for them. */
static int multi_decided(const redlock__batch *b, int n, void *arg)
{
    const multi *m = arg;
    int q = m->c->quorum;
    for (int k = 0; k < m->nlocks; k++) {
        int yes = 0, no = 0;
        for (int i = 0; i < n; i++) {
            const redisReply *r = answer(&b[i], k);
            if (!r || r->type != REDIS_REPLY_INTEGER)
                continue;
            if (r->integer == 0) {
                no++;
            } else if (r->integer == 1) {
                const redisReply *w = m->stride == m->nlocks
                                          ? NULL
                                          : b[i].calls[m->nlocks].reply;
                if (m->stride == m->nlocks ||
                    (w && w->type == REDIS_REPLY_INTEGER &&
                     w->integer >= m->c->opts.min_replicas))
                    yes++;
            }
        }
        if (yes < q && no <= n - q)
            return 0;
    }
    return 1;
}

static int multi_init(multi *m, redlock_client *c, int nlocks, int wait)
{
    /* Zero what is used, not the whole (large) struct: this is on the path
     * of every release. */
    m->stride = nlocks + (wait ? 1 : 0);
    m->c = c;
    m->nlocks = nlocks;
    m->decider.quorum = c->quorum;
    m->decider.decided = multi_decided;
    m->decider.arg = m;
    m->decider.ask_all = 0;
    memset(m->b, 0, sizeof m->b[0] * (size_t)c->nnodes);
    if (nlocks == 1) {
        m->calls = m->one_calls;
        m->t = &m->one_tally;
        m->num = m->one_num;
        memset(m->calls, 0,
               sizeof m->calls[0] * (size_t)(c->nnodes * m->stride));
        memset(m->t, 0, sizeof *m->t);
    } else {
        m->calls = calloc((size_t)c->nnodes * (size_t)m->stride,
                          sizeof *m->calls);
        m->t = calloc((size_t)nlocks, sizeof *m->t);
        m->num = calloc((size_t)nlocks, sizeof *m->num);
        if (!m->calls || !m->t || !m->num) {
            free(m->calls);
            free(m->t);
            free(m->num);
            return -1;
        }
    }
    for (int i = 0; i < c->nnodes; i++) {
        m->b[i].node = &c->nodes[i];
        m->b[i].calls = &m->calls[i * m->stride];
        m->b[i].ncalls = m->stride;
    }
    if (wait)
        for (int i = 0; i < c->nnodes; i++)
            add_wait(c, &m->calls[i * m->stride + nlocks], m->nrep, m->tmo);
    return 0;
}

static void multi_free(multi *m, redlock_client *c)
{
    redlock__batches_clear(m->b, c->nnodes);
    if (m->calls != m->one_calls) {
        free(m->calls);
        free(m->t);
        free(m->num);
    }
}

/* Tally the script replies of lock k: 1 = yes, 0 = no. */
static void multi_tally(multi *m, redlock_client *c, int k, int nlocks)
{
    tally *t = &m->t[k];
    for (int i = 0; i < c->nnodes; i++) {
        redlock__batch *b = &m->b[i];
        const redisReply *r = answer(b, k);
        if (b->ncalls == 0) {
            tally_fail(t, REDLOCK_IO, "%s: not contacted (it failed earlier)",
                       b->node->name);
        } else if (!r) {
            tally_fail(t, b->st, "%s", b->err);
        } else if (r->type == REDIS_REPLY_INTEGER &&
                   (r->integer == 0 || r->integer == 1 ||
                    (r->integer == 2 &&
                     b->calls[k].script == &redlock__script_extend))) {
            if (r->integer != 1)
                t->no++; /* 2: healed, but our token was not there */
            else if (m->stride == nlocks || /* no WAIT asked */
                     replicas_ok(c, b->calls[nlocks].reply, t, b->node))
                t->yes++;
        } else if (r->type == REDIS_REPLY_ERROR) {
            tally_fail(t, redlock__reply_error_status(r), "%s: %s",
                       b->node->name, r->str);
        } else {
            tally_fail(t, REDLOCK_SERVER, "%s: unexpected reply type (%s)",
                       b->node->name, redlock__reply_type_name(r->type));
        }
    }
}

/* After a renewal that a quorum confirmed: put the key back, SET NX, on
 * the nodes that answered it had none (a node that restarted, or was
 * stopped past the ttl), so that the lock survives the next node to fail
 * instead of resting on a bare quorum from then on.  Only where the key is
 * free, so it takes nobody's vote; best effort, within one node timeout;
 * rare (one extra round trip only when a node lost keys).  A release
 * racing it can leave such a key behind for one ttl. */
static void heal(redlock_client *c, multi *m, redlock_lock **locks, int n,
                 const int64_t *ttl, const redlock_status *st)
{
    int count[REDLOCK_MAX_NODES] = {0}, total = 0;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < c->nnodes && st[k] == REDLOCK_OK; i++) {
            const redisReply *r = answer(&m->b[i], k);
            if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 2) {
                count[i]++;
                total++;
            }
        }
    if (total == 0)
        return;
    redlock__call *calls = calloc((size_t)total, sizeof *calls);
    char(*num)[24] = calloc((size_t)total, sizeof *num);
    redlock__batch b[REDLOCK_MAX_NODES];
    if (!calls || !num) {
        free(calls);
        free(num);
        return;
    }
    memset(b, 0, sizeof b[0] * (size_t)c->nnodes);
    int at = 0;
    for (int i = 0; i < c->nnodes; i++) {
        b[i].node = &c->nodes[i];
        b[i].calls = &calls[at];
        for (int k = 0; k < n && b[i].ncalls < count[i]; k++) {
            const redisReply *r =
                st[k] == REDLOCK_OK ? answer(&m->b[i], k) : NULL;
            if (!r || r->type != REDIS_REPLY_INTEGER || r->integer != 2)
                continue;
            redlock__call *cl = &calls[at++];
            b[i].ncalls++;
            set_arg(cl, "SET", 3);
            set_arg(cl, locks[k]->key, locks[k]->keylen);
            set_arg(cl, locks[k]->token, strlen(locks[k]->token));
            set_arg(cl, "NX", 2);
            set_arg(cl, "PX", 2);
            set_arg(cl, num[at - 1], redlock__fmt_i64(num[at - 1], ttl[k]));
        }
    }
    redlock__exchange(b, c->nnodes, op_deadline_ns(c));
    redlock__batches_clear(b, c->nnodes);
    free(calls);
    free(num);
}

/* (model rule watchdog_round, for the watchdog's calls) */
void redlock__renew(redlock_client *c, redlock_lock **locks, int n,
                    const int64_t *ttl, redlock_status *st)
{
    multi m;
    if (multi_init(&m, c, n, c->opts.min_replicas > 0) != 0) {
        for (int k = 0; k < n; k++)
            st[k] = redlock__fail(REDLOCK_NOMEM, "out of memory");
        return;
    }
    char one_lower, *lower = n == 1 ? &one_lower : malloc((size_t)n);
    if (!lower) {
        multi_free(&m, c);
        for (int k = 0; k < n; k++)
            st[k] = redlock__fail(REDLOCK_NOMEM, "out of memory");
        return;
    }
    redlock__handles_begin_renew(locks, n, lower);
    for (int k = 0; k < n; k++) {
        size_t len = redlock__fmt_i64(m.num[k], ttl[k]);
        for (int i = 0; i < c->nnodes; i++) {
            redlock__call *cl = &m.calls[i * m.stride + k];
            cl->script = &redlock__script_extend;
            set_arg(cl, locks[k]->key, locks[k]->keylen);
            set_arg(cl, locks[k]->token, strlen(locks[k]->token));
            set_arg(cl, m.num[k], len);
            set_arg(cl, lower[k] ? "0" : "1", 1);
        }
    }
    int64_t start = redlock__now_ms();
    redlock__exchange_until(m.b, c->nnodes, op_deadline_ns(c), &m.decider);
    int64_t now = redlock__now_ms();
    for (int k = 0; k < n; k++) {
        redlock_lock *l = locks[k];
        multi_tally(&m, c, k, n);
        int64_t vend =
            redlock__validity_end_ms(start, ttl[k], c->opts.drift_factor);
        if (m.t[k].yes >= c->quorum && vend > now) {
            atomic_store(&l->validity_end_ms, vend);
            st[k] = REDLOCK_OK;
        } else {
            if (m.t[k].yes >= c->quorum)
                st[k] = redlock__fail(REDLOCK_IO,
                                      "extend \"%.80s\": quorum took longer "
                                      "than the validity of a %" PRId64
                                      " ms ttl",
                                      l->key, ttl[k]);
            else
                st[k] = verdict(c, &m.t[k], REDLOCK_NOT_HELD, "extend",
                                l->key);
            if (st[k] == REDLOCK_NOT_HELD) {
                redlock__mark_lost(l);
            } else if (vend < atomic_load(&l->validity_end_ms)) {
                /* Nodes that did not answer may have applied it: a
                 * shorter ttl now bounds what we can count on. */
                atomic_store(&l->validity_end_ms, vend);
            }
        }
    }
    heal(c, &m, locks, n, ttl, st);
    redlock__handles_end_renew(locks, n, lower);
    if (lower != &one_lower)
        free(lower);
    multi_free(&m, c);
}

/* locks may come back reordered: st[k] is the outcome of locks[k] as they
 * are on return.  Nodes in *dead (when given) are skipped, and those that
 * fail join it. */
static void release_many(redlock_client *c, redlock_lock **locks, int n,
                         redlock_status *st, int64_t deadline_ns,
                         uint32_t *dead)
{
    /* A handle whose token another handle of this client still holds, or
     * is taking, leaves the key to it: the last one deletes (model rule
     * release_last).  Those go to the end, and are done. */
    for (int k = 0; k < n;) {
        if (redlock__handle_begin_delete(locks[k], 1)) {
            k++;
            continue;
        }
        redlock_lock *kept = locks[k];
        locks[k] = locks[--n];
        locks[n] = kept;
        st[n] = REDLOCK_OK;
    }
    if (n == 0)
        return;
    multi m;
    if (multi_init(&m, c, n, 0) != 0) {
        for (int k = 0; k < n; k++)
            st[k] = redlock__fail(REDLOCK_NOMEM, "out of memory");
        return;
    }
    for (int k = 0; k < n; k++) {
        /* Our own leftover subscription is nobody to hand off to (no
         * such thing with the queue). */
        int own = !locks[k]->qkey &&
                  redlock__notify_draining(c, locks[k]->key, locks[k]->keylen);
        for (int i = 0; i < c->nnodes; i++)
            release_call(&m.calls[i * m.stride + k], locks[k], own);
    }
    for (int i = 0; dead && i < c->nnodes; i++)
        if (*dead & (UINT32_C(1) << i))
            m.b[i].ncalls = 0;
    redlock__exchange_until(m.b, c->nnodes, deadline_ns, &m.decider);
    for (int i = 0; dead && i < c->nnodes; i++)
        if (m.b[i].ncalls && m.b[i].st == REDLOCK_IO && !m.b[i].partial)
            *dead |= UINT32_C(1) << i; /* (a cluster's other masters answered) */
    for (int k = 0; k < n; k++) {
        redlock_lock *l = locks[k];
        multi_tally(&m, c, k, n);
        /* Whether or not the request left: our token may still be there.
         * Not for a node the teardown gives up on: no later contact. */
        for (int i = 0; i < c->nnodes; i++)
            if (m.b[i].ncalls && !answer(&m.b[i], k) &&
                !(dead && (*dead & (UINT32_C(1) << i))))
                redlock__node_add_ghost(&c->nodes[i], l->key, l->keylen,
                                        l->token);
        if (m.t[k].yes >= c->quorum)
            st[k] = REDLOCK_OK;
        else
            st[k] = verdict(c, &m.t[k], REDLOCK_NOT_HELD, "release", l->key);
    }
    multi_free(&m, c);
}

redlock_status redlock_extend(redlock_lock *lock, int64_t ttl_ms)
{
    redlock_status st;
    redlock__clear_error();
    if (!lock)
        return redlock__fail(REDLOCK_INVALID, "lock is NULL");
    if ((st = check_ttl(lock->client, ttl_ms)) != REDLOCK_OK)
        return st;
    /* Not while the watchdog renews it too: whichever reply is stored
     * last would set the validity, maybe the longer of two ttls while the
     * server applied the shorter last. */
    int kept = redlock__watchdog_remove(lock);
    redlock__renew(lock->client, &lock, 1, &ttl_ms, &st);
    if (st == REDLOCK_OK)
        lock->ttl_ms = ttl_ms;
    if (kept && st != REDLOCK_NOT_HELD) {
        redlock_status again = redlock__watchdog_add(lock);
        if (st == REDLOCK_OK)
            st = again;
    }
    return st;
}

redlock_status redlock_release(redlock_lock *lock)
{
    redlock_status st;
    redlock__clear_error();
    if (!lock)
        return redlock__fail(REDLOCK_INVALID, "lock is NULL");
    /* The release need not wait for a renewal in flight (that would be two
     * timeouts on a stalled node): the renewal is a token-checked PEXPIRE,
     * which never brings back a key we deleted.  Only freeing the handle
     * waits for it. */
    redlock__watchdog_take(lock);
    release_many(lock->client, &lock, 1, &st, op_deadline_ns(lock->client),
                 NULL);
    redlock__watchdog_wait_idle(lock);
    handle_free(lock);
    return st;
}

void redlock_detach(redlock_lock *lock)
{
    if (!lock)
        return;
    redlock__watchdog_remove(lock);
    handle_free(lock);
}

void redlock__release_all(redlock_client *c, int64_t deadline_ns,
                          uint32_t *dead)
{
    enum { CHUNK = 256 };
    redlock_lock *batch[CHUNK];
    redlock_status st[CHUNK];
    uint32_t all = c->nnodes >= 32 ? UINT32_MAX
                                   : (UINT32_C(1) << c->nnodes) - 1;
    for (;;) {
        int n = 0;
        pthread_mutex_lock(&c->mu);
        for (redlock_lock *l = c->locks; l && n < CHUNK; l = l->next)
            batch[n++] = l;
        pthread_mutex_unlock(&c->mu);
        if (n == 0)
            return;
        /* Past the deadline, or with every node given up, the rest are
         * only freed: their keys expire with their ttl. */
        int64_t now = redlock__now_ns();
        int64_t dl = op_deadline_ns(c);
        if (now < deadline_ns && (*dead & all) != all)
            release_many(c, batch, n, st, dl < deadline_ns ? dl : deadline_ns,
                         dead);
        for (int k = 0; k < n; k++)
            handle_free(batch[k]);
    }
}

/* ---- adopt and inspect ------------------------------------------------- */

/* Run the inspect script on every node: replies are {value|nil, pttl}. */
static void inspect_all(redlock_client *c, const char *key, size_t keylen,
                        redlock__batch *b, redlock__call *calls,
                        int64_t deadline_ns)
{
    one_call_each(c, b, calls);
    for (int i = 0; i < c->nnodes; i++) {
        calls[i].script = &redlock__script_inspect;
        set_arg(&calls[i], key, keylen);
    }
    redlock__exchange(b, c->nnodes, deadline_ns);
}

/* What node i answered to inspect: 1 with *val (NULL when the key is free
 * or handed off) and *pttl, or 0 (counted as a failure) when it failed or
 * the answer is not the script's {value|nil, integer}. */
static int inspected(const redlock__batch *b, const redlock__call *call,
                     tally *t, const redisReply **val, long long *pttl)
{
    const redisReply *r = call->reply;
    *val = NULL;
    if (b->st != REDLOCK_OK) {
        tally_fail(t, b->st, "%s", b->err);
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        tally_fail(t, redlock__reply_error_status(r), "%s: %s",
                   b->node->name, r->str);
        return 0;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_INTEGER ||
        (r->element[0]->type != REDIS_REPLY_STRING &&
         r->element[0]->type != REDIS_REPLY_NIL)) {
        tally_fail(t, REDLOCK_SERVER, "%s: unexpected reply to inspect",
                   b->node->name);
        return 0;
    }
    *pttl = r->element[1]->integer;
    const redisReply *v = r->element[0];
    /* A key handed off to waiters is free: nobody holds it. */
    if (v->type == REDIS_REPLY_STRING &&
        !(v->len == strlen(REDLOCK__HANDOFF_VALUE) &&
          memcmp(v->str, REDLOCK__HANDOFF_VALUE, v->len) == 0))
        *val = v;
    return 1;
}

static int same(const redisReply *a, const char *s, size_t len)
{
    return a && a->len == len && memcmp(a->str, s, len) == 0;
}

/* Smallest remaining ttl, with -1 (no expiry) as the largest. */
static long long min_pttl(long long a, long long b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

redlock_status redlock_adopt(redlock_client *c, const char *key,
                             const char *token, redlock_lock **lock)
{
    redlock_status st;
    if (lock)
        *lock = NULL;
    redlock__clear_error();
    if (!c || !lock)
        return redlock__fail(REDLOCK_INVALID, "%s is NULL",
                             c ? "lock out-pointer" : "client");
    if ((st = check_key(key)) != REDLOCK_OK ||
        (st = check_token(token)) != REDLOCK_OK)
        return st;
    size_t keylen = strlen(key), toklen = strlen(token);
    redlock__call calls[REDLOCK_MAX_NODES];
    redlock__batch b[REDLOCK_MAX_NODES];
    /* Listed before looking, so that no delete of this token by this
     * client can land after the look: the new handle counts as one of its
     * holders from here on (model rules identity_register,
     * identity_gate). */
    redlock_lock *l = handle_new(c, key, keylen, token);
    if (!l)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    int64_t deadline = op_deadline_ns(c);
    if (redlock__handle_claim(l, deadline) != 0) {
        handle_free(l);
        return REDLOCK_IO;
    }
    int64_t start = redlock__now_ms();
    inspect_all(c, key, keylen, b, calls, deadline);

    tally t;
    memset(&t, 0, sizeof t);
    long long pttl = -1;
    for (int i = 0; i < c->nnodes; i++) {
        long long p = -1;
        const redisReply *v;
        if (!inspected(&b[i], &calls[i], &t, &v, &p))
            continue;
        if (same(v, token, toklen)) {
            t.yes++;
            pttl = t.yes == 1 ? p : min_pttl(pttl, p);
        } else {
            t.no++;
        }
    }
    redlock__batches_clear(b, c->nnodes);
    if (t.yes < c->quorum) {
        handle_free(l);
        return verdict(c, &t, REDLOCK_NOT_HELD, "adopt", key);
    }
    /* A key without expiry is held until deleted: renew it as the longest
     * lock we know. */
    int64_t ttl = pttl < 0 ? REDLOCK_TTL_MAX : (int64_t)pttl;
    if (ttl <= redlock__drift_ms(ttl, c->opts.drift_factor)) {
        /* It expires within the drift allowance: no validity to give. */
        handle_free(l);
        return redlock__fail(REDLOCK_NOT_HELD,
                             "adopt \"%.80s\": the key expires in %" PRId64
                             " ms, within the clock drift allowance",
                             key, ttl);
    }
    l->ttl_ms = ttl < 1 ? 1 : ttl;
    l->acquired_ms = start;
    atomic_store(&l->validity_end_ms,
                 redlock__validity_end_ms(start, ttl, c->opts.drift_factor));
    redlock__handle_held(l);
    *lock = l;
    return REDLOCK_OK;
}

redlock_status redlock_inspect(redlock_client *c, const char *key, char *buf,
                               size_t len, int64_t *pttl_ms)
{
    redlock_status st;
    redlock__clear_error();
    if (!c)
        return redlock__fail(REDLOCK_INVALID, "client is NULL");
    if ((st = check_key(key)) != REDLOCK_OK)
        return st;
    if (!buf && len > 0)
        return redlock__fail(REDLOCK_INVALID, "buf is NULL but len is %zu",
                             len);
    size_t keylen = strlen(key);
    redlock__call calls[REDLOCK_MAX_NODES];
    redlock__batch b[REDLOCK_MAX_NODES];
    const redisReply *val[REDLOCK_MAX_NODES];
    long long pt[REDLOCK_MAX_NODES];
    inspect_all(c, key, keylen, b, calls, op_deadline_ns(c));

    tally t;
    memset(&t, 0, sizeof t);
    int answered = 0;
    for (int i = 0; i < c->nnodes; i++) {
        pt[i] = -1;
        answered += inspected(&b[i], &calls[i], &t, &val[i], &pt[i]);
    }
    /* The holder is a value a quorum of nodes agree on. */
    int best = -1, votes = 0;
    long long pttl = -1;
    for (int i = 0; i < c->nnodes && best < 0; i++) {
        if (!val[i])
            continue;
        votes = 0;
        for (int j = 0; j < c->nnodes; j++)
            if (same(val[j], val[i]->str, val[i]->len)) {
                pttl = votes++ == 0 ? pt[j] : min_pttl(pttl, pt[j]);
            }
        if (votes >= c->quorum)
            best = i;
    }
    if (best >= 0) {
        size_t need = val[best]->len + 1;
        if (buf && len < need) {
            st = redlock__fail(REDLOCK_INVALID,
                               "buffer of %zu bytes too small: the token "
                               "needs %zu",
                               len, need);
        } else {
            if (buf)
                memcpy(buf, val[best]->str, need);
            if (pttl_ms)
                *pttl_ms = pttl;
            st = REDLOCK_OK;
        }
    } else if (answered >= c->quorum) {
        st = redlock__fail(REDLOCK_NOT_HELD, "\"%.80s\" is not held", key);
    } else {
        st = verdict(c, &t, REDLOCK_NOT_HELD, "inspect", key);
    }
    redlock__batches_clear(b, c->nnodes);
    return st;
}

/* ---- accessors --------------------------------------------------------- */

int redlock_held(const redlock_lock *lock)
{
    if (!lock)
        return 0;
    return atomic_load(&((redlock_lock *)lock)->held);
}

int64_t redlock_validity_ms(const redlock_lock *lock)
{
    if (!lock || !redlock_held(lock))
        return 0;
    int64_t left = atomic_load(&((redlock_lock *)lock)->validity_end_ms) -
                   redlock__now_ms();
    return left > 0 ? left : 0;
}

const char *redlock_token(const redlock_lock *lock)
{
    return lock ? lock->token : NULL;
}

const char *redlock_key(const redlock_lock *lock)
{
    return lock ? lock->key : NULL;
}

int64_t redlock_fence(const redlock_lock *lock) { return lock ? lock->fence : 0; }
