/*
 * Counting semaphores: at most n holders of a name at once.  A permit is a
 * lock on one of n slots, "<name>:redlock:0" .. "<name>:redlock:<n-1>",
 * so that everything a lock does a permit does too (keepalive, extend,
 * release, on_lost, the identity rules), and a crashed holder's slot comes
 * free when its ttl ends: there is no count to leak.
 *
 * With one node a single script looks at every slot and takes a free one,
 * or queues the waiter in the semaphore's queue ("<name>:redlock:sq"); a
 * released slot goes to the first waiter there, as a lock's key does
 * (queue.c).  With N > 1 nodes each slot is tried as a Redlock lock in
 * turn, from a random one on (so that waiters spread over the slots), and
 * waiters wake when any slot's release is published.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* N > 1: the slots in turn, from a random one, until one is ours or
 * deadline_ns (one node timeout for the whole try, as for a lock: a wait
 * then returns within wait_ms + node_timeout_ms, however many slots);
 * BUSY when those tried are held.  *hint: the soonest a slot's holder's
 * ttl ends, or -1. */
static redlock_status try_slots(redlock_client *c, redlock_lock *l,
                                int64_t ttl_ms, int as_waiter,
                                int64_t deadline_ns, int64_t *validity_end,
                                int64_t *hint)
{
    redlock_status st = REDLOCK_BUSY, worst = REDLOCK_BUSY;
    char msg[512] = "";
    int first = (int)redlock__random_between(0, l->sem_n - 1);
    *hint = -1;
    int tried = 0;
    for (int k = 0; k < l->sem_n && (k == 0 || redlock__now_ns() < deadline_ns);
         k++, tried++) {
        redlock__handle_slot(l, (first + k) % l->sem_n);
        if ((st = redlock__handle_retoken(l)) != REDLOCK_OK)
            return st;
        int64_t h = -1;
        st = redlock__attempt(c, l, ttl_ms, as_waiter, deadline_ns,
                              validity_end, &h);
        if (st == REDLOCK_OK)
            return st;
        if (h >= 0 && (*hint < 0 || h < *hint))
            *hint = h;
        if (st != REDLOCK_BUSY && st != REDLOCK_IO)
            return st; /* AUTH, SERVER, NOMEM: the same on every slot */
        if (st == REDLOCK_IO && tried > 0 && redlock__now_ns() >= deadline_ns)
            break; /* cut short by the try's deadline: the others decide */
        if (st == REDLOCK_IO || worst == REDLOCK_BUSY) {
            worst = st;
            snprintf(msg, sizeof msg, "%s", redlock_last_error());
        }
    }
    if (worst == REDLOCK_BUSY && tried == l->sem_n)
        return redlock__fail(REDLOCK_BUSY, "acquire \"%.80s\": all %d slots "
                                           "are held",
                             l->sem_name, l->sem_n);
    if (worst == REDLOCK_BUSY)
        return redlock__fail(REDLOCK_BUSY,
                             "acquire \"%.80s\": the %d of %d slots tried "
                             "within one node timeout are held",
                             l->sem_name, tried, l->sem_n);
    return redlock__fail(worst, "%s", msg);
}

/* N > 1: try, and between tries sleep until a slot's release is published
 * (or the soonest holder's ttl ends, or the retry delay without a
 * notifier). */
static redlock_status wait_slots(redlock_client *c, redlock_lock *l,
                                 int64_t ttl_ms, int64_t until_ns,
                                 int64_t *validity_end)
{
    redlock__watch **ws = calloc((size_t)l->sem_n, sizeof *ws);
    uint64_t *seen = calloc((size_t)l->sem_n, sizeof *seen);
    char *name = malloc(l->sem_namelen + REDLOCK__SLOT_EXTRA);
    redlock_status st = REDLOCK_NOMEM;
    if (!ws || !seen || !name) {
        st = redlock__fail(REDLOCK_NOMEM, "out of memory");
        goto out;
    }
    int watching = 0;
    int64_t nt = (int64_t)c->opts.node_timeout_ms * 1000000;
    for (int tries = 0;; tries++) {
        int64_t hint;
        int64_t deadline = redlock__now_ns() + nt;
        if (until_ns < INT64_MAX - nt && deadline > until_ns + nt)
            deadline = until_ns + nt;
        st = try_slots(c, l, ttl_ms, tries > 0, deadline, validity_end, &hint);
        if (st == REDLOCK_OK ||
            (st != REDLOCK_BUSY && st != REDLOCK_IO) ||
            redlock__now_ns() >= until_ns)
            break;
        if (!watching && st == REDLOCK_BUSY) {
            for (int i = 0; i < l->sem_n; i++) {
                size_t len = redlock__slot_name(c, l->sem_name, l->sem_namelen,
                                                i, name);
                if (!(ws[i] = redlock__notify_watch(c, name, len, &seen[i])))
                    break;
                watching = i + 1;
            }
        }
        int live = watching == l->sem_n;
        int64_t delay = redlock__jitter_ms(live ? 1000 : c->opts.retry_delay_ms);
        if (st == REDLOCK_BUSY && hint >= 0 && hint + 1 < delay)
            delay = hint + 1;
        int64_t wake = redlock__now_ns() + delay * 1000000;
        if (wake > until_ns)
            wake = until_ns;
        if (live && st == REDLOCK_BUSY)
            redlock__notify_wait_any(c, ws, seen, l->sem_n, wake);
        else
            redlock__sleep_until_ns(wake);
    }
    for (int i = 0; i < watching; i++)
        redlock__notify_unwatch(c, ws[i]);
out:
    free(ws);
    free(seen);
    free(name);
    return st;
}

redlock_status redlock_acquire_n(redlock_client *c, const char *key, int n,
                                 int64_t ttl_ms, int64_t wait_ms,
                                 redlock_lock **lock)
{
    int64_t until;
    redlock_status st =
        redlock__acquire_args(c, key, ttl_ms, wait_ms, lock, &until);
    if (st != REDLOCK_OK)
        return st;
    if (n < 1 || n > REDLOCK_SEMAPHORE_MAX)
        return redlock__fail(REDLOCK_INVALID,
                             "n %d is outside 1..REDLOCK_SEMAPHORE_MAX (%d)",
                             n, REDLOCK_SEMAPHORE_MAX);
    if (n == 1)
        return redlock_acquire(c, key, ttl_ms, wait_ms, lock);
    if ((st = redlock__check_derived(c, key, strlen(key))) != REDLOCK_OK)
        return st;
    char token[REDLOCK__OWN_TOKEN_MAX];
    if ((st = redlock__own_token(c, token)) != REDLOCK_OK)
        return st;
    redlock_lock *l = redlock__handle_new_sem(c, key, strlen(key), token, n);
    if (!l)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    int64_t vend = 0, fence = 0;
    if (c->queued && wait_ms == 0)
        st = redlock__queue_sem_try(c, l, ttl_ms, &vend);
    else if (c->queued)
        st = redlock__queue_wait(c, l, ttl_ms, 1, until, &vend, &fence);
    else
        st = wait_slots(c, l, ttl_ms, until, &vend);
    if (st != REDLOCK_OK) {
        if (st == REDLOCK_BUSY && wait_ms > 0)
            redlock__fail(st,
                          "acquire \"%.80s\": all %d slots still held after "
                          "waiting %" PRId64 " ms",
                          key, n, wait_ms);
        redlock__handle_free(l);
        return st;
    }
    redlock__acquired(l, ttl_ms, vend, 0);
    *lock = l;
    return REDLOCK_OK;
}
