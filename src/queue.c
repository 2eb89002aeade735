/*
 * The waiter queue: with one node, a release hands the lock straight to
 * the first waiter still listening, in the release's own atomic step, and
 * wakes that waiter's thread alone.  The cost of a handoff then does not
 * grow with the number of waiters, and the new holder needs no round trip
 * to learn that it holds.
 *
 * The queue is a Redis list beside the key, "<key>:redlock:q".  A waiter's
 * entry is "<ttl> <seq> <client id> <token>": the release script pops it,
 * publishes the grant on "redlock:grant:<client id>" (the client's
 * notifier listens there), and sets the key to the waiter's token with the
 * waiter's ttl, all only if the key still held the releaser's token.  An
 * entry whose client no longer listens (the grant reached nobody: killed,
 * or its subscription is down) is skipped, so a dead waiter never holds
 * the queue up.
 *
 * A wait (one acquire call) keeps one entry:
 *  - its first try pushes it (in the same round trip that finds the key
 *    held), later tries check it (push it again if it was skipped), and
 *    the try at the deadline removes it; each of them also takes a key
 *    that is free, or finds it already ours (granted: the message was
 *    missed);
 *  - between tries it sleeps until its grant, a re-subscription (grants
 *    may have been missed), or a timer: the holder's pttl for the first
 *    in line (who takes over from a holder that vanished), longer further
 *    back.
 *
 * Validity of a grant.  The grant popped an entry that some push of this
 * wait created, and every push was processed after it was sent, so after
 * the first push's send time s0: the key expires at (grant time + ttl) by
 * the server's clock, which is later than s0 + ttl.  Counted like an
 * acquire sent at s0, the validity is s0 + ttl - drift(ttl), a lower bound
 * (model/queue.pml checks that taking it from the message's arrival
 * instead allows two holders).  A long wait leaves little of that; with
 * less than 3/4 of the ttl left, one check try ("already ours", which
 * raises the key's ttl to ours) is made first, and counts from its own
 * send time.
 *
 * A wait that ends without the lock removes its entry atomically with
 * finding the key held, so no grant can follow.  When that last try fails
 * (I/O), a grant may still come; no wait claims it and the key expires
 * after that waiter's ttl (own tokens also get a ghost delete, which hands
 * the key on at the next contact).
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long an idle queue lives: refreshed by every check, so only a queue
 * whose waiters all vanished gets this old. */
#define QUEUE_TTL_MS "300000"
/* A waiter further back checks its entry about this often, times
 * 1 + position / 8 (a holder that vanished is the first one's business). */
#define CHECK_MS 1000
#define CHECK_MAX_MS 30000

typedef enum { Q_PUSH, Q_CHECK, Q_CANCEL, Q_TRY } qmode;

/* What one try found. */
typedef struct qreply {
    int holds;     /* placed, or already ours */
    int64_t fence; /* with holds and fencing */
    int slot;      /* with holds, for a semaphore: the slot taken */
    int64_t pos;   /* queued at this position; -1 when not queued */
    int64_t pttl;  /* the holder's ttl, for the first in line; else -1 */
} qreply;

static void arg(redlock__call *c, const char *s, size_t len)
{
    c->argv[c->argc] = s;
    c->argvlen[c->argc++] = len;
}

/* A semaphore's slot names, for its script's keys. */
typedef struct slots {
    char *buf;
    const char **name;
    size_t *len;
} slots;

static void slots_free(slots *s)
{
    free(s->buf);
    free(s->name);
    free(s->len);
}

static int slots_make(const redlock_lock *l, slots *s)
{
    size_t room = l->sem_namelen + REDLOCK__SLOT_EXTRA;
    s->buf = malloc(room * (size_t)l->sem_n);
    s->name = malloc(sizeof *s->name * (size_t)l->sem_n);
    s->len = malloc(sizeof *s->len * (size_t)l->sem_n);
    if (!s->buf || !s->name || !s->len) {
        slots_free(s);
        return -1;
    }
    for (int i = 0; i < l->sem_n; i++) {
        char *p = s->buf + room * (size_t)i;
        s->len[i] = redlock__slot_name(l->client, l->sem_name,
                                       l->sem_namelen, i, p);
        s->name[i] = p;
    }
    return 0;
}

/* One try, by deadline_ns.  REDLOCK_OK with *out filled, or a failure
 * (last error set); *uncertain when the try may have changed the key.
 * sl: a semaphore's slots (NULL for a lock). */
static redlock_status queue_try(redlock_client *c, redlock_lock *l,
                                const slots *sl, const char *ttl,
                                size_t ttllen, const char *entry,
                                size_t entrylen, qmode mode,
                                int64_t deadline_ns, qreply *out,
                                int *uncertain)
{
    static const char *const modes[] = {"push", "check", "cancel", "try"};
    redlock__call call;
    redlock__batch b;
    memset(&call, 0, sizeof call);
    memset(&b, 0, sizeof b);
    if (sl) {
        call.script = &redlock__script_sem;
        arg(&call, l->qkey, l->qkeylen);
        call.xargc = call.xkeys = l->sem_n;
        call.xargv = sl->name;
        call.xargvlen = sl->len;
    } else {
        call.script = l->fkey ? &redlock__script_enqueue_fenced
                              : &redlock__script_enqueue;
        arg(&call, l->key, l->keylen);
        arg(&call, l->qkey, l->qkeylen);
        if (l->fkey)
            arg(&call, l->fkey, l->fkeylen);
    }
    arg(&call, l->token, strlen(l->token));
    arg(&call, ttl, ttllen);
    arg(&call, entry, entrylen);
    arg(&call, modes[mode], strlen(modes[mode]));
    arg(&call, QUEUE_TTL_MS, strlen(QUEUE_TTL_MS));
    b.node = &c->nodes[0];
    b.calls = &call;
    b.ncalls = 1;
    redlock__exchange(&b, 1, deadline_ns);

    redlock_status st = REDLOCK_OK;
    const redisReply *r = call.reply;
    out->holds = 0;
    out->fence = 0;
    out->slot = -1;
    out->pos = -1;
    out->pttl = -1;
    *uncertain = 0;
    if (b.st != REDLOCK_OK) {
        *uncertain = b.uncertain;
        st = redlock__fail(b.st, "%s", b.err);
    } else if (r->type == REDIS_REPLY_ERROR) {
        *uncertain = 1; /* a lying server may have set it anyway */
        st = redlock__fail(redlock__reply_error_status(r), "%s: %s",
                           b.node->name, r->str);
    } else if (r->type == REDIS_REPLY_INTEGER) {
        out->holds = r->integer != 0;
        long long m = r->integer < 0 ? -r->integer : r->integer;
        if (sl && m > l->sem_n) {
            out->holds = 0;
            *uncertain = 1;
            st = redlock__fail(REDLOCK_SERVER, "%s: no such slot (%lld)",
                               b.node->name, m);
        } else if (sl) {
            out->slot = (int)m - 1;
        } else {
            out->fence = l->fkey ? m : 0;
        }
    } else if (r->type == REDIS_REPLY_STATUS && r->len >= 3 &&
               r->str[0] == 'Q' && r->str[1] == ' ') {
        long long pos = -1, pttl = -1;
        int got = sscanf(r->str + 2, "%lld %lld", &pos, &pttl);
        if (got < 1 || pos < 0) {
            *uncertain = 1;
            st = redlock__fail(REDLOCK_SERVER, "%s: malformed queue reply",
                               b.node->name);
        } else {
            out->pos = pos;
            out->pttl = got == 2 ? pttl : -1;
        }
    } else {
        *uncertain = 1;
        st = redlock__fail(REDLOCK_SERVER, "%s: unexpected reply type (%s)",
                           b.node->name, redlock__reply_type_name(r->type));
    }
    redlock__batches_clear(&b, 1);
    return st;
}

/* A wait of our own token ends without the lock, and the key may be ours
 * on the node all the same (a try that failed after sending, or one that
 * placed it with no validity left): a token-checked delete, at the next
 * contact, hands it on.  For a permit: its slot (in_slot: the handle names
 * it), else any of them.  A caller's token gets none: another process may
 * hold it. */
static void give_up(redlock_client *c, redlock_lock *l, const slots *sl,
                    int own_token, int in_slot)
{
    if (!own_token)
        return;
    if (!l->sem_n || in_slot)
        redlock__node_add_ghost(&c->nodes[0], l->key, l->keylen, l->token);
    else
        for (int i = 0; i < l->sem_n; i++)
            redlock__node_add_ghost(&c->nodes[0], sl->name[i], sl->len[i],
                                    l->token);
}

/* When a queued waiter at pos should look again by itself. */
static int64_t check_after_ms(const qreply *q)
{
    int64_t ms = (int64_t)CHECK_MS * (1 + (q->pos > 0 ? q->pos : 0) / 8);
    ms = redlock__jitter_ms(ms < CHECK_MAX_MS ? ms : CHECK_MAX_MS);
    /* The first in line takes over from a holder whose key ends, and
     * looks about every second for one deleted by a client outside the
     * queue (a plain SET NX user), which hands nothing on. */
    if (q->pos == 0 && q->pttl >= 0 && q->pttl + 1 < ms)
        ms = q->pttl + 1;
    return ms;
}

redlock_status redlock__queue_wait(redlock_client *c, redlock_lock *l,
                                   int64_t ttl_ms, int own_token,
                                   int64_t until_ns, int64_t *validity_end,
                                   int64_t *fence)
{
    char ttl[24];
    size_t ttllen = redlock__fmt_i64(ttl, ttl_ms);
    size_t toklen = strlen(l->token);
    uint64_t seq = atomic_fetch_add(&c->grant_seq, 1);
    size_t entrycap = 24 + 24 + REDLOCK__GRANT_ID_LEN + toklen + 4;
    char *entry = malloc(entrycap);
    if (!entry)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    int entrylen = snprintf(entry, entrycap, "%s %" PRIu64 " %s %s", ttl, seq,
                            c->grant_id, l->token);
    slots sl;
    memset(&sl, 0, sizeof sl);
    if (l->sem_n && slots_make(l, &sl) != 0) {
        free(entry);
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    }

    redlock__grant g;
    memset(&g, 0, sizeof g);
    g.sem = l->sem_n;
    g.key = g.sem ? l->sem_name : l->key;
    g.keylen = g.sem ? l->sem_namelen : l->keylen;
    g.token = l->token;
    g.qkey = l->qkey;
    g.qkeylen = l->qkeylen;
    g.seq = seq;
    uint64_t seen = 0;
    int listening = redlock__notify_expect(c, &g, &seen) == 0;

    /* A client's first wait: its notifier has just started.  Until its
     * grant channel is subscribed a release would skip this waiter, so the
     * first push waits for it (one node timeout at most). */
    if (listening && !redlock__notify_grants_live(c, &g)) {
        int64_t ready = redlock__now_ns() +
                        (int64_t)c->opts.node_timeout_ms * 1000000;
        while (!redlock__notify_grants_live(c, &g) &&
               redlock__now_ns() < ready &&
               redlock__now_ns() < until_ns)
            redlock__notify_await(c, &g, &seen,
                                  ready < until_ns ? ready : until_ns);
    }

    qmode mode = Q_PUSH;
    int granted = 0; /* a grant came, but left too little validity */
    int64_t first_sent = -1, sent = 0;
    uint64_t before = redlock__handle_seq(c);
    redlock_status st;
    qreply q = {0, 0, -1, -1, -1};
    for (;;) {
        int last = redlock__now_ns() >= until_ns;
        if (last)
            mode = Q_CANCEL;
        /* No try runs past the wait by more than one node timeout: the
         * last one (which gives up the place) gets what is left of it. */
        int64_t nt = (int64_t)c->opts.node_timeout_ms * 1000000;
        int64_t deadline = redlock__now_ns() + nt;
        if (until_ns < INT64_MAX - nt && deadline > until_ns + nt)
            deadline = until_ns + nt;
        int uncertain = 0;
        if (deadline <= redlock__now_ns()) {
            st = redlock__fail(REDLOCK_IO, "acquire \"%.80s\": no time left "
                                           "to leave the queue",
                               l->key);
            uncertain = 1; /* our entry may still be there */
        } else if (!own_token && redlock__handle_claim(l, deadline) != 0) {
            st = REDLOCK_IO;
        } else {
            sent = redlock__now_ms();
            if (first_sent < 0)
                first_sent = sent;
            st = queue_try(c, l, l->sem_n ? &sl : NULL, ttl, ttllen, entry,
                           (size_t)entrylen, mode, deadline, &q, &uncertain);
        }
        int64_t wake_ns;
        if (st == REDLOCK_OK && q.holds) {
            *validity_end =
                redlock__validity_end_ms(sent, ttl_ms, c->opts.drift_factor);
            *fence = q.fence;
            if (l->sem_n)
                redlock__handle_slot(l, q.slot);
            if (*validity_end <= redlock__now_ms()) {
                st = redlock__fail(REDLOCK_IO,
                                   "acquire \"%.80s\": the try took longer "
                                   "than the validity of a %" PRId64
                                   " ms ttl",
                                   l->key, ttl_ms);
                give_up(c, l, &sl, own_token, 1);
            }
            break;
        }
        if (st == REDLOCK_OK) { /* another token holds it */
            if (!own_token)
                redlock__handle_siblings_lost(l, before);
            st = redlock__fail(REDLOCK_BUSY, "acquire \"%.80s\": held by "
                                             "another token",
                               l->key);
            if (mode == Q_CANCEL)
                break;
            mode = Q_CHECK;
            wake_ns = redlock__now_ns() + check_after_ms(&q) * 1000000;
        } else if (st == REDLOCK_IO && !last) {
            /* Rides out a node that is down or stalled; whether the entry
             * got there, the next try (a check) finds out. */
            if (mode == Q_PUSH)
                mode = Q_CHECK;
            wake_ns = redlock__now_ns() +
                      redlock__jitter_ms(c->opts.retry_delay_ms) * 1000000;
        } else {
            /* The wait is over without the lock, and the last try may have
             * left the entry (or even the key: a lying server): a delete of
             * our own token hands the key on at the next contact. */
            if (uncertain)
                give_up(c, l, &sl, own_token, 0);
            break;
        }
        if (wake_ns > until_ns)
            wake_ns = until_ns;
        if (!listening || granted) {
            redlock__sleep_until_ns(wake_ns);
            continue;
        }
        if (!redlock__notify_await(c, &g, &seen, wake_ns))
            continue;
        /* Granted: the key holds our token since some time after
         * first_sent (see the top of this file). */
        if (!own_token)
            redlock__handle_siblings_lost(l, before);
        int64_t vend = redlock__validity_end_ms(first_sent, ttl_ms,
                                                c->opts.drift_factor);
        /* Taken as it is only when it is exactly ours: our ttl (an entry
         * someone else wrote may say another), a fence number when we
         * count them (a releaser without fencing takes none), and most of
         * the validity left.  Else a check makes it so. */
        if (g.ttl == ttl_ms && (!l->fkey || g.fence > 0) &&
            vend - redlock__now_ms() >= ttl_ms - ttl_ms / 4) {
            *validity_end = vend;
            *fence = g.fence;
            if (l->sem_n)
                redlock__handle_slot(l, g.slot);
            st = REDLOCK_OK;
            break;
        }
        /* Too little left: a check finds it ours and raises its ttl (and
         * after a failed one, the next try waits its turn). */
        granted = 1;
        mode = Q_CHECK;
    }
    if (listening)
        redlock__notify_unexpect(c, &g);
    slots_free(&sl);
    free(entry);
    return st;
}

redlock_status redlock__queue_sem_try(redlock_client *c, redlock_lock *l,
                                      int64_t ttl_ms, int64_t *validity_end)
{
    char ttl[24];
    size_t ttllen = redlock__fmt_i64(ttl, ttl_ms);
    slots sl;
    if (slots_make(l, &sl) != 0)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    int64_t deadline =
        redlock__now_ns() + (int64_t)c->opts.node_timeout_ms * 1000000;
    int64_t sent = redlock__now_ms();
    qreply q = {0, 0, -1, -1, -1};
    int uncertain = 0;
    redlock_status st = queue_try(c, l, &sl, ttl, ttllen, "", 0, Q_TRY,
                                  deadline, &q, &uncertain);
    if (st == REDLOCK_OK && q.holds) {
        redlock__handle_slot(l, q.slot);
        *validity_end =
            redlock__validity_end_ms(sent, ttl_ms, c->opts.drift_factor);
        if (*validity_end <= redlock__now_ms()) {
            st = redlock__fail(REDLOCK_IO,
                               "acquire \"%.80s\": the try took longer than "
                               "the validity of a %" PRId64 " ms ttl",
                               l->sem_name, ttl_ms);
            give_up(c, l, &sl, 1, 1);
        }
    } else if (st == REDLOCK_OK) {
        st = redlock__fail(REDLOCK_BUSY,
                           "acquire \"%.80s\": all %d slots are held",
                           l->sem_name, l->sem_n);
    } else if (uncertain) {
        give_up(c, l, &sl, 1, 0);
    }
    slots_free(&sl);
    return st;
}
