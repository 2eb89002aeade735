/*
 * Release notifications: waiters sleep until a release is published rather
 * than polling, so a freed lock passes to a waiter in about one round trip.
 *
 * One notifier thread per client (started by the first wait) keeps one
 * subscriber connection per node and SUBSCRIBEs to "redlock:release:<key>"
 * for every key some thread of the client waits for.  A message, a
 * subscription confirmed, or a connection re-made all bump the key's
 * generation and wake its waiters, who then try again.  Waking on the
 * confirmation closes the gap between a waiter's failed try and its
 * subscription: a release in that gap is not missed, it is retried for.
 * Notifications are hints, never grants: a waiter always retries the
 * acquire, and falls back to timed retries (by the holder's ttl) when no
 * notification comes, for a holder that crashed publishes nothing.
 *
 * On a cluster node the channel is a shard channel in the key's slot,
 * "redlock:release:{<key>}" (SSUBSCRIBE, Redis 7), subscribed on the
 * master that owns the slot: a release reaches that master's subscribers
 * only.  The notifier keeps a connection per master that some watched key
 * lives on; when the slot moves (the master says "sunsubscribe", or
 * refuses SSUBSCRIBE with MOVED) or the master's connection fails, the
 * channel is subscribed again where the map says the slot is now, and
 * the key's waiters retry meanwhile (a release may have gone unheard).
 *
 * With the waiter queue (one node, queue.c) there are no per-key channels:
 * the notifier subscribes to the client's own "redlock:grant:<id>", on
 * which a release tells the one waiter it handed the lock to, and wakes
 * that waiter's thread alone.  A grant for no current wait (one that
 * ended meanwhile) is ignored: its key expires with that waiter's ttl.
 */
#include "notify.h"

#include <hiredis/hiredis.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void kick(struct redlock_notifier *nf)
{
    char one = 1;
    ssize_t w = write(nf->wake[1], &one, 1);
    (void)w; /* a full pipe already wakes the thread */
}

void redlock__notify_moved(redlock_client *c)
{
    pthread_mutex_lock(&c->notify_mu);
    if (c->notify)
        kick(c->notify);
    pthread_mutex_unlock(&c->notify_mu);
}

static struct redlock_notifier *get(redlock_client *c)
{
    pthread_mutex_lock(&c->notify_mu);
    if (!c->notify)
        c->notify = redlock__notifier_start(c);
    struct redlock_notifier *nf = c->notify;
    pthread_mutex_unlock(&c->notify_mu);
    return nf;
}

redlock__watch *redlock__notify_watch(redlock_client *c, const char *key,
                                      size_t keylen, uint64_t *seen)
{
    struct redlock_notifier *nf = get(c);
    if (!nf)
        return NULL;
    pthread_mutex_lock(&nf->mu);
    redlock__watch *w;
    for (w = nf->watches; w; w = w->next)
        if (!w->draining && !w->grant && w->keylen == keylen &&
            memcmp(w->key, key, keylen) == 0)
            break; /* even at refs 0: the channel is still subscribed */
    if (!w && (w = calloc(1, sizeof *w)) && (w->key = malloc(keylen)) &&
        (!c->cluster_names ||
         (w->sch = malloc(keylen + REDLOCK__SCHAN_EXTRA)))) {
        memcpy(w->key, key, keylen);
        w->keylen = keylen;
        if (w->sch)
            w->schlen = redlock__release_channel(key, keylen, w->sch);
        for (int i = 0; i < REDLOCK_MAX_NODES; i++)
            w->on[i] = -1;
        w->next = nf->watches;
        nf->watches = w;
    } else if (w && (!w->key || (c->cluster_names && !w->sch))) {
        free(w->key);
        free(w);
        w = NULL;
    }
    if (w) {
        w->refs++;
        *seen = w->gen;
    }
    pthread_mutex_unlock(&nf->mu);
    if (w)
        kick(nf);
    return w;
}

int redlock__notify_wait(redlock_client *c, redlock__watch *w, uint64_t *seen,
                         int64_t until_ns)
{
    struct redlock_notifier *nf = c->notify;
    pthread_mutex_lock(&nf->mu);
    while (w->gen == *seen && !nf->stop && redlock__now_ns() < until_ns)
        redlock__cond_wait_until(&nf->cond, &nf->mu, until_ns);
    int woken = w->gen != *seen;
    *seen = w->gen;
    pthread_mutex_unlock(&nf->mu);
    return woken;
}

int redlock__notify_wait_any(redlock_client *c, redlock__watch *const *ws,
                             uint64_t *seen, int n, int64_t until_ns)
{
    struct redlock_notifier *nf = c->notify;
    int woken = 0;
    pthread_mutex_lock(&nf->mu);
    for (;;) {
        for (int i = 0; i < n; i++)
            woken |= ws[i]->gen != seen[i];
        if (woken || nf->stop || redlock__now_ns() >= until_ns)
            break;
        redlock__cond_wait_until(&nf->cond, &nf->mu, until_ns);
    }
    for (int i = 0; i < n; i++)
        seen[i] = ws[i]->gen;
    pthread_mutex_unlock(&nf->mu);
    return woken;
}

int redlock__notify_live(redlock_client *c, redlock__watch *w)
{
    struct redlock_notifier *nf = c->notify;
    pthread_mutex_lock(&nf->mu);
    int live = w->confirmed && nf->live > 0;
    pthread_mutex_unlock(&nf->mu);
    return live;
}

int redlock__notify_draining(redlock_client *c, const char *key,
                             size_t keylen)
{
    struct redlock_notifier *nf = atomic_load(&c->notify);
    if (!nf) /* this client never waited: nothing of its own listens */
        return 0;
    int idle = 0;
    pthread_mutex_lock(&nf->mu);
    for (redlock__watch *w = nf->watches; w && !idle; w = w->next)
        idle = !w->grant && (w->draining || w->refs == 0) &&
               w->keylen == keylen && memcmp(w->key, key, keylen) == 0;
    pthread_mutex_unlock(&nf->mu);
    return idle;
}

void redlock__notify_unwatch(redlock_client *c, redlock__watch *w)
{
    struct redlock_notifier *nf = c->notify;
    pthread_mutex_lock(&nf->mu);
    int last = --w->refs == 0;
    pthread_mutex_unlock(&nf->mu);
    if (last)
        kick(nf); /* the thread unsubscribes and frees it */
}

/* On a cluster, g's grant channel "redlock:grant:<client id>:<queue>"
 * (in the queue's slot: see the release script) is a subscription of its
 * own, shared by the client's waits on that queue; called with mu held. */
static int grant_watch(struct redlock_notifier *nf, redlock__grant *g)
{
    redlock__watch *w;
    for (w = nf->watches; w; w = w->next)
        if (w->grant && !w->draining && w->keylen == g->qkeylen &&
            memcmp(w->key, g->qkey, g->qkeylen) == 0)
            break;
    if (!w) {
        size_t plen = strlen(GRANT_PREFIX);
        if (!(w = calloc(1, sizeof *w)) || !(w->key = malloc(g->qkeylen)) ||
            !(w->sch = malloc(plen + REDLOCK__GRANT_ID_LEN + 1 + g->qkeylen))) {
            if (w)
                free(w->key);
            free(w);
            return -1;
        }
        memcpy(w->key, g->qkey, g->qkeylen);
        w->keylen = g->qkeylen;
        char *p = w->sch;
        memcpy(p, GRANT_PREFIX, plen);
        memcpy(p + plen, nf->c->grant_id, REDLOCK__GRANT_ID_LEN);
        p[plen + REDLOCK__GRANT_ID_LEN] = ':';
        memcpy(p + plen + REDLOCK__GRANT_ID_LEN + 1, g->qkey, g->qkeylen);
        w->schlen = plen + REDLOCK__GRANT_ID_LEN + 1 + g->qkeylen;
        w->grant = 1;
        for (int i = 0; i < REDLOCK_MAX_NODES; i++)
            w->on[i] = -1;
        w->next = nf->watches;
        nf->watches = w;
    }
    w->refs++;
    g->gw = w;
    return 0;
}

int redlock__notify_expect(redlock_client *c, redlock__grant *g,
                           uint64_t *seen)
{
    struct redlock_notifier *nf = get(c);
    if (!nf)
        return -1;
    redlock__cond_init_monotonic(&g->cv);
    pthread_mutex_lock(&nf->mu);
    g->granted = 0;
    g->gw = NULL;
    if (c->cluster_names && grant_watch(nf, g) != 0) {
        pthread_mutex_unlock(&nf->mu);
        pthread_cond_destroy(&g->cv);
        return -1;
    }
    g->next = nf->grants;
    nf->grants = g;
    *seen = nf->grant_gen;
    pthread_mutex_unlock(&nf->mu);
    if (g->gw)
        kick(nf);
    return 0;
}

int redlock__notify_grants_live(redlock_client *c, const redlock__grant *g)
{
    struct redlock_notifier *nf = c->notify;
    pthread_mutex_lock(&nf->mu);
    int live = (g->gw ? g->gw->confirmed : nf->grant_confirmed) &&
               nf->live > 0;
    pthread_mutex_unlock(&nf->mu);
    return live;
}

int redlock__notify_await(redlock_client *c, redlock__grant *g,
                          uint64_t *seen, int64_t until_ns)
{
    struct redlock_notifier *nf = c->notify;
    pthread_mutex_lock(&nf->mu);
    while (!g->granted && nf->grant_gen == *seen && !nf->stop &&
           redlock__now_ns() < until_ns)
        redlock__cond_wait_until(&g->cv, &nf->mu, until_ns);
    *seen = nf->grant_gen;
    int granted = g->granted;
    pthread_mutex_unlock(&nf->mu);
    return granted;
}

void redlock__notify_unexpect(redlock_client *c, redlock__grant *g)
{
    struct redlock_notifier *nf = c->notify;
    pthread_mutex_lock(&nf->mu);
    for (redlock__grant **pp = &nf->grants; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    int last = g->gw && --g->gw->refs == 0;
    g->gw = NULL;
    pthread_mutex_unlock(&nf->mu);
    if (last)
        kick(nf); /* the thread unsubscribes and frees it */
    pthread_cond_destroy(&g->cv);
}

void redlock__notify_stop(redlock_client *c)
{
    /* Taken out under notify_mu: the Sentinel watcher may still kick it
     * (redlock__notify_moved) until it is joined. */
    pthread_mutex_lock(&c->notify_mu);
    struct redlock_notifier *nf = c->notify;
    c->notify = NULL;
    pthread_mutex_unlock(&c->notify_mu);
    if (!nf)
        return;
    pthread_mutex_lock(&nf->mu);
    nf->stop = 1;
    pthread_cond_broadcast(&nf->cond);
    redlock__notifier_bump_grants(nf);
    pthread_mutex_unlock(&nf->mu);
    kick(nf);
    pthread_join(nf->thread, NULL);
    for (int e = 0; e < nf->nsubs; e++)
        redlock__conn_free(nf->subs[e].conn);
    free(nf->subs);
    free(nf->pfd);
    free(nf->idx);
    while (nf->watches) {
        redlock__watch *w = nf->watches;
        nf->watches = w->next;
        free(w->key);
        free(w->sch);
        free(w);
    }
    close(nf->wake[0]);
    close(nf->wake[1]);
    pthread_cond_destroy(&nf->cond);
    pthread_mutex_destroy(&nf->mu);
    free(nf);
    c->notify = NULL;
}
