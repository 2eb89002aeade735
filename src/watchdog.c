/*
 * The watchdog: one thread per client, started on the first keepalive,
 * sleeping until the earliest renewal in a deadline heap.  Renewals due
 * together go out as one pipeline per node (redlock__renew), so that
 * thousands of kept-alive locks cost a few round trips per interval.
 *
 * The thread does its I/O without holding wd_mu; a lock it is working on is
 * marked wd_busy, and taking a lock back (release, detach) waits for that
 * to clear, so the handle is never freed under the watchdog's feet.
 */
#include "internal.h"

#include <stdlib.h>

/* Renewals per round; more wait for the next round, which follows at once. */
#define ROUND_MAX 1024

struct redlock_watchdog {
    redlock_client *c;
    pthread_t thread;
    pthread_cond_t wake; /* CLOCK_MONOTONIC: the heap changed, or stop */
    pthread_cond_t idle; /* a lock's wd_busy was cleared */
    redlock__heap heap;
    int stop;
    int heal; /* a node came back: renew everything now */
    redlock_lock *round[ROUND_MAX];
    redlock_lock *renew[ROUND_MAX];
    int64_t ttl[ROUND_MAX];
    redlock_status st[ROUND_MAX];
    redlock_lock *lost[ROUND_MAX];
};

static int64_t interval_ms(const redlock_client *c, const redlock_lock *l)
{
    return redlock__renew_interval_ms(l->ttl_ms, c->opts.renew_floor_ms);
}

/* The shortest ttl that still leaves some validity after the drift
 * allowance: a renewal to the max_hold_ms cap with less is pointless. */
static int64_t min_useful_ttl(double drift_factor)
{
    int64_t t = 1;
    while (t - redlock__drift_ms(t, drift_factor) <= 0)
        t++;
    return t;
}

/* Decide, outside the mutex, what each lock of the round needs; renew the
 * ones that should be; return how many were found lost (in wd->lost). */
static int work_round(struct redlock_watchdog *wd, int n)
{
    redlock_client *c = wd->c;
    redlock_lock **renew = wd->renew; /* kept in wd: 16 KB off the stack */
    int64_t *ttl = wd->ttl;
    int nrenew = 0, nlost = 0;
    int64_t now = redlock__now_ms();
    int64_t min_ttl = min_useful_ttl(c->opts.drift_factor);

    for (int k = 0; k < n; k++) {
        redlock_lock *l = wd->round[k];
        int64_t hold_end = c->opts.max_hold_ms > 0
                               ? l->acquired_ms + c->opts.max_hold_ms
                               : INT64_MAX;
        l->wd_due_ms = -1; /* not renewed: decided below */
        if (!atomic_load(&l->held)) {
            /* the owner learned it from redlock_extend; or a sibling's
             * acquire found the key gone, and nobody has told yet */
            if (atomic_exchange(&l->lost_untold, 0))
                wd->lost[nlost++] = l;
            continue;
        }
        /* Never past max_hold_ms: the last renewal is cut to the time left,
         * so that the key expires at the cap, not up to a ttl before. */
        int64_t left = hold_end - now;
        if (left >= l->ttl_ms) {
            renew[nrenew] = l;
            ttl[nrenew++] = l->ttl_ms;
        } else if (left >= min_ttl) {
            renew[nrenew] = l;
            ttl[nrenew++] = left;
        } else if (left <= 0 || atomic_load(&l->validity_end_ms) <= now) {
            /* At the cap it is lost, even if its last ttl outlives the
             * cap (an acquire with a ttl longer than max_hold_ms whose
             * key could not be cut). */
            redlock__mark_lost(l);
            wd->lost[nlost++] = l;
        } else {
            int64_t vend = atomic_load(&l->validity_end_ms);
            l->wd_due_ms = vend < hold_end ? vend : hold_end;
        }
    }
    if (nrenew == 0)
        return nlost;

    int64_t start = redlock__now_ms();
    redlock__renew(c, renew, nrenew, ttl, wd->st);
    now = redlock__now_ms();
    for (int k = 0; k < nrenew; k++) {
        redlock_lock *l = renew[k];
        int64_t vend = atomic_load(&l->validity_end_ms);
        if (wd->st[k] == REDLOCK_OK) {
            /* Cut to the cap, the key now expires there: nothing is left
             * to renew, only the end to notice. */
            l->wd_due_ms = ttl[k] < l->ttl_ms
                               ? l->acquired_ms + c->opts.max_hold_ms
                               : start + interval_ms(c, l);
        } else if (wd->st[k] == REDLOCK_NOT_HELD || vend <= now) {
            redlock__mark_lost(l);
            wd->lost[nlost++] = l;
        } else {
            /* I/O trouble: try again soon, and decide by validity's end. */
            int64_t retry = now + redlock__jitter_ms(c->opts.retry_delay_ms);
            l->wd_due_ms = retry < vend ? retry : vend;
        }
    }
    return nlost;
}

static void *watchdog_main(void *arg)
{
    struct redlock_watchdog *wd = arg;
    redlock_client *c = wd->c;

    pthread_mutex_lock(&c->wd_mu);
    while (!wd->stop) {
        if (wd->heal) {
            /* Every lock due now: equal keys keep the heap a heap. */
            int64_t now = redlock__now_ms();
            wd->heal = 0;
            for (int k = 0; k < wd->heap.n; k++)
                if (wd->heap.items[k]->wd_due_ms > now)
                    wd->heap.items[k]->wd_due_ms = now;
        }
        redlock_lock *top = redlock__heap_top(&wd->heap);
        if (!top) {
            pthread_cond_wait(&wd->wake, &c->wd_mu);
            continue;
        }
        int64_t now = redlock__now_ms();
        if (top->wd_due_ms > now) {
            redlock__cond_wait_until(&wd->wake, &c->wd_mu,
                                     top->wd_due_ms * 1000000);
            continue;
        }
        /* Gather what is due now or soon, so that it shares a pipeline;
         * renewing a little early costs nothing. */
        int64_t horizon = now + interval_ms(c, top) / 8;
        int n = 0;
        while (n < ROUND_MAX && (top = redlock__heap_top(&wd->heap)) &&
               top->wd_due_ms <= horizon) {
            redlock__heap_remove(&wd->heap, top);
            top->wd_busy = 1;
            wd->round[n++] = top;
        }
        pthread_mutex_unlock(&c->wd_mu);
        int nlost = work_round(wd, n);
        pthread_mutex_lock(&c->wd_mu);

        /* A lock its owner took back meanwhile (release, extend) is the
         * owner's to report: its own call tells it the outcome. */
        int nreport = 0;
        for (int k = 0; k < nlost; k++)
            if (wd->lost[k]->wd_keep)
                wd->lost[nreport++] = wd->lost[k];
        nlost = nreport;
        for (int k = 0; k < n; k++) {
            redlock_lock *l = wd->round[k];
            if (l->wd_keep && atomic_load(&l->held) && l->wd_due_ms >= 0 &&
                redlock__heap_push(&wd->heap, l) == 0)
                continue;
            l->wd_keep = 0;
        }
        /* Callbacks run without the mutex, the lost locks still marked
         * busy so that their owners cannot free them meanwhile. */
        if (nlost > 0 && c->opts.on_lost) {
            pthread_mutex_unlock(&c->wd_mu);
            for (int k = 0; k < nlost; k++)
                c->opts.on_lost(wd->lost[k], c->opts.on_lost_arg);
            pthread_mutex_lock(&c->wd_mu);
        }
        for (int k = 0; k < n; k++)
            wd->round[k]->wd_busy = 0;
        pthread_cond_broadcast(&wd->idle);
    }
    pthread_mutex_unlock(&c->wd_mu);
    return NULL;
}

static struct redlock_watchdog *start(redlock_client *c)
{
    struct redlock_watchdog *wd = calloc(1, sizeof *wd);
    if (!wd)
        return NULL;
    wd->c = c;
    redlock__cond_init_monotonic(&wd->wake);
    pthread_cond_init(&wd->idle, NULL);
    int rc = redlock__thread_start(&wd->thread, watchdog_main, wd);
    if (rc != 0) {
        pthread_cond_destroy(&wd->wake);
        pthread_cond_destroy(&wd->idle);
        free(wd);
        return NULL;
    }
    return wd;
}

redlock_status redlock__watchdog_add(redlock_lock *l)
{
    redlock_client *c = l->client;
    redlock_status st = REDLOCK_OK;
    pthread_mutex_lock(&c->wd_mu);
    if (!c->wd && !(c->wd = start(c))) {
        st = redlock__fail(REDLOCK_NOMEM, "cannot start the watchdog thread");
    } else if (!atomic_load(&l->held)) {
        st = redlock__fail(REDLOCK_NOT_HELD, "lock \"%.80s\" is already lost",
                           l->key);
    } else if (!l->wd_keep) {
        /* Normally one interval from now; but a lock handed over late,
         * with less validity left than that, is renewed at half of what
         * is left (at once when nothing is), not after it expired. */
        int64_t now = redlock__now_ms();
        int64_t left = atomic_load(&l->validity_end_ms) - now;
        int64_t wait = interval_ms(c, l);
        if (left / 2 < wait)
            wait = left > 0 ? left / 2 : 0;
        /* A lock whose ttl outlives max_hold_ms is cut to the cap at
         * once (work_round renews it with the time left). */
        if (c->opts.max_hold_ms > 0 &&
            atomic_load(&l->validity_end_ms) >
                l->acquired_ms + c->opts.max_hold_ms)
            wait = 0;
        l->wd_due_ms = now + wait;
        if (!l->wd_busy && redlock__heap_push(&c->wd->heap, l) != 0)
            st = redlock__fail(REDLOCK_NOMEM, "out of memory");
        else
            l->wd_keep = 1;
        pthread_cond_signal(&c->wd->wake);
    }
    pthread_mutex_unlock(&c->wd_mu);
    return st;
}

int redlock__watchdog_take(redlock_lock *l)
{
    redlock_client *c = l->client;
    int kept = 0;
    pthread_mutex_lock(&c->wd_mu);
    if (c->wd) {
        kept = l->wd_keep;
        l->wd_keep = 0;
        redlock__heap_remove(&c->wd->heap, l);
    }
    pthread_mutex_unlock(&c->wd_mu);
    return kept;
}

void redlock__watchdog_wait_idle(redlock_lock *l)
{
    redlock_client *c = l->client;
    pthread_mutex_lock(&c->wd_mu);
    while (c->wd && l->wd_busy)
        pthread_cond_wait(&c->wd->idle, &c->wd_mu);
    pthread_mutex_unlock(&c->wd_mu);
}

int redlock__watchdog_remove(redlock_lock *l)
{
    int kept = redlock__watchdog_take(l);
    redlock__watchdog_wait_idle(l);
    return kept;
}

void redlock__watchdog_stop(redlock_client *c)
{
    pthread_mutex_lock(&c->wd_mu);
    struct redlock_watchdog *wd = c->wd;
    if (wd) {
        wd->stop = 1;
        pthread_cond_signal(&wd->wake);
    }
    pthread_mutex_unlock(&c->wd_mu);
    if (!wd)
        return;
    pthread_join(wd->thread, NULL);
    pthread_mutex_lock(&c->wd_mu);
    c->wd = NULL;
    pthread_mutex_unlock(&c->wd_mu);
    pthread_cond_destroy(&wd->wake);
    pthread_cond_destroy(&wd->idle);
    redlock__heap_free(&wd->heap);
    free(wd);
}

redlock_status redlock_keepalive(redlock_lock *lock)
{
    redlock__clear_error();
    if (!lock)
        return redlock__fail(REDLOCK_INVALID, "lock is NULL");
    return redlock__watchdog_add(lock);
}

void redlock__watchdog_node_back(redlock_client *c)
{
    pthread_mutex_lock(&c->wd_mu);
    if (c->wd) {
        c->wd->heal = 1;
        pthread_cond_signal(&c->wd->wake);
    }
    pthread_mutex_unlock(&c->wd_mu);
}
