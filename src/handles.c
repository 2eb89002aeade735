/*
 * A client's handles, and which of them share an identity.
 *
 * The token is the identity of a holder: two acquires of one key with one
 * token do not exclude each other, so a client may hold several handles of
 * the same (key, token), and other threads may be acquiring or releasing it
 * at the same time.  Deleting a token-checked key is then a decision about
 * all of them, not about one handle:
 *
 *  - a release, or the undo of a failed attempt, deletes only when no other
 *    handle of the identity is held or being acquired (the last release
 *    deletes, like a reference count);
 *  - a new attempt (or adopt) of the identity waits until every delete of
 *    it this client has sent has settled, and has the ghost deletes still
 *    owed for it sent and answered first, so that no delete of ours lands
 *    after its SET.
 *
 * Both decisions are taken under the client's mutex, which is what makes
 * them exclusive: a handle is seen either before it deletes (and then the
 * claimer waits for it) or after (and then it saw the claimer and kept the
 * key).  Handles are found by a hash table of (key, token) chained through
 * the handles themselves, so that taking a lock allocates nothing but the
 * handle.  (model/redlock.pml rules identity_register,
 * release_last, undo_acquire, identity_gate)
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDS_MIN 64

static uint32_t id_hash(const char *key, size_t keylen, const char *token)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < keylen; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    h = (h ^ 0xffu) * 16777619u; /* a byte no token holds: key|token apart */
    for (const char *p = token; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

static int same_id(const redlock_lock *a, const redlock_lock *b)
{
    return a->id_hash == b->id_hash && a->keylen == b->keylen &&
           memcmp(a->key, b->key, a->keylen) == 0 &&
           strcmp(a->token, b->token) == 0;
}

/* With c->mu held. */
static void ids_insert(redlock_client *c, redlock_lock *l)
{
    l->id_hash = id_hash(l->key, l->keylen, l->token);
    if (c->nids >= c->ids_cap) { /* keep chains short; if we cannot, longer */
        size_t cap = c->ids_cap ? c->ids_cap * 2 : IDS_MIN;
        redlock_lock **t = calloc(cap, sizeof *t);
        if (t) {
            for (size_t i = 0; i < c->ids_cap; i++)
                for (redlock_lock *h = c->ids[i], *next; h; h = next) {
                    next = h->id_next;
                    h->id_next = t[h->id_hash & (cap - 1)];
                    t[h->id_hash & (cap - 1)] = h;
                }
            free(c->ids);
            c->ids = t;
            c->ids_cap = cap;
        }
    }
    redlock_lock **slot = &c->ids[l->id_hash & (c->ids_cap - 1)];
    l->id_next = *slot;
    *slot = l;
    c->nids++;
}

static void ids_remove(redlock_client *c, redlock_lock *l)
{
    for (redlock_lock **pp = &c->ids[l->id_hash & (c->ids_cap - 1)]; *pp;
         pp = &(*pp)->id_next)
        if (*pp == l) {
            *pp = l->id_next;
            c->nids--;
            return;
        }
}

/* Another handle of l's identity in one of the states of mask (bits of
 * 1 << state)?  With c->mu held. */
static int sibling(const redlock_client *c, const redlock_lock *l, int mask)
{
    for (const redlock_lock *h = c->ids[l->id_hash & (c->ids_cap - 1)]; h;
         h = h->id_next)
        if (h != l && (mask & (1 << h->id_state)) && same_id(h, l))
            return 1;
    return 0;
}

#define USERS                                                                 \
    ((1 << REDLOCK__H_ATTEMPT) | (1 << REDLOCK__H_HELD) |                     \
     (1 << REDLOCK__H_SHORTENING))
/* What a new attempt of the identity must wait for: deletes, and a ttl
 * that may be lowered below what the attempt would count on. */
#define CLAIM_WAITS ((1 << REDLOCK__H_DELETING) | (1 << REDLOCK__H_SHORTENING))

/* A handle with room for a key of up to keyroom bytes: key itself, or,
 * for a semaphore of sem_n slots, the name of any of its slots. */
static redlock_lock *make(redlock_client *c, const char *key, size_t keylen,
                          const char *token, int sem_n)
{
    size_t toklen = strlen(token);
    size_t keyroom = keylen + (sem_n ? REDLOCK__SLOT_EXTRA : 0);
    size_t nroom = sem_n ? keylen + 1 : 0;
    size_t qroom = c->queued ? keyroom + REDLOCK__NAME_EXTRA + 1 : 0;
    /* Fencing numbers a lock's holders; a semaphore's are concurrent. */
    size_t froom = c->queued && c->opts.fencing && !sem_n
                       ? keyroom + REDLOCK__NAME_EXTRA + 1
                       : 0;
    size_t sroom = c->cluster_names ? keyroom + REDLOCK__SCHAN_EXTRA + 1 : 0;
    redlock_lock *l = calloc(1, sizeof *l + keyroom + 1 + nroom + qroom +
                                    froom + sroom + toklen + 1);
    if (!l)
        return NULL;
    l->client = c;
    l->key = (char *)(l + 1);
    memcpy(l->key, key, keylen);
    l->keylen = keylen;
    char *p = l->key + keyroom + 1;
    if (sem_n) {
        l->sem_n = sem_n;
        l->sem_name = p;
        l->sem_namelen = keylen;
        memcpy(l->sem_name, key, keylen);
        p += nroom;
    }
    if (qroom) {
        l->qkey = p;
        /* A semaphore's queue is never a lock's, even for a lock key that
         * looks like a slot ("<name>:redlock:5"): releasing such a lock
         * hands nothing to the semaphore's waiters (a holder too many). */
        l->qkeylen = redlock__derived_name(
            c, key, keylen,
            sem_n ? REDLOCK__SEMQ_SUFFIX : REDLOCK__QUEUE_SUFFIX, l->qkey);
        p += qroom;
    }
    if (froom) {
        l->fkey = p;
        l->fkeylen = redlock__derived_name(c, key, keylen,
                                           REDLOCK__FENCE_SUFFIX, l->fkey);
        p += froom;
    }
    if (sroom) {
        l->schan = p;
        l->schanlen = redlock__release_channel(key, keylen, l->schan);
        p += sroom;
    }
    l->token = p; /* last: a new token (same length) is written in place */
    memcpy(l->token, token, toklen);
    l->wd_index = -1;
    l->id_state = REDLOCK__H_ATTEMPT;
    atomic_init(&l->held, 1);
    atomic_init(&l->validity_end_ms, 0);
    pthread_mutex_lock(&c->mu);
    if (!c->ids) {
        c->ids = calloc(IDS_MIN, sizeof *c->ids);
        if (!c->ids) {
            pthread_mutex_unlock(&c->mu);
            free(l);
            return NULL;
        }
        c->ids_cap = IDS_MIN;
    }
    ids_insert(c, l);
    l->next = c->locks;
    if (c->locks)
        c->locks->prev = l;
    c->locks = l;
    pthread_mutex_unlock(&c->mu);
    return l;
}

redlock_lock *redlock__handle_new(redlock_client *c, const char *key,
                                  size_t keylen, const char *token)
{
    return make(c, key, keylen, token, 0);
}

redlock_lock *redlock__handle_new_sem(redlock_client *c, const char *name,
                                      size_t namelen, const char *token,
                                      int n)
{
    return make(c, name, namelen, token, n);
}

size_t redlock__release_channel(const char *key, size_t keylen, char *out)
{
    return redlock__cluster_channel(REDLOCK__CHANNEL_PREFIX, key, keylen, out);
}

size_t redlock__slot_name(const redlock_client *c, const char *name,
                          size_t namelen, int slot, char *out)
{
    char suffix[32] = ":redlock:";
    redlock__fmt_i64(suffix + 9, slot);
    return redlock__derived_name(c, name, namelen, suffix, out);
}

void redlock__handle_slot(redlock_lock *l, int slot)
{
    redlock_client *c = l->client;
    pthread_mutex_lock(&c->mu);
    ids_remove(c, l);
    l->keylen =
        redlock__slot_name(c, l->sem_name, l->sem_namelen, slot, l->key);
    l->key[l->keylen] = '\0';
    if (l->schan)
        l->schanlen = redlock__release_channel(l->key, l->keylen, l->schan);
    ids_insert(c, l);
    pthread_mutex_unlock(&c->mu);
}

void redlock__handle_free(redlock_lock *l)
{
    redlock_client *c = l->client;
    pthread_mutex_lock(&c->mu);
    if (l->prev)
        l->prev->next = l->next;
    else
        c->locks = l->next;
    if (l->next)
        l->next->prev = l->prev;
    ids_remove(c, l);
    if (c->ids_waiters > 0)
        pthread_cond_broadcast(&c->ids_cv);
    pthread_mutex_unlock(&c->mu);
    free(l);
}

redlock_status redlock__handle_retoken(redlock_lock *l)
{
    redlock_client *c = l->client;
    char token[REDLOCK__TOKEN_LEN + 1];
    redlock_status st = redlock__new_token(token);
    if (st != REDLOCK_OK)
        return st;
    pthread_mutex_lock(&c->mu);
    ids_remove(c, l);
    /* Own tokens: a new UUID in place of the old; what follows it (who
     * holds it, since when) stays. */
    memcpy(l->token, token, REDLOCK__TOKEN_LEN);
    ids_insert(c, l);
    pthread_mutex_unlock(&c->mu);
    return REDLOCK_OK;
}

void redlock__handle_held(redlock_lock *l)
{
    pthread_mutex_lock(&l->client->mu);
    l->id_state = REDLOCK__H_HELD;
    l->held_seq = ++l->client->held_seq;
    pthread_mutex_unlock(&l->client->mu);
}

uint64_t redlock__handle_seq(redlock_client *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t seq = c->held_seq;
    pthread_mutex_unlock(&c->mu);
    return seq;
}

int redlock__handle_begin_delete(redlock_lock *l, int leaving)
{
    redlock_client *c = l->client;
    pthread_mutex_lock(&c->mu);
    int alone = !sibling(c, l, USERS);
    if (alone)
        l->id_state = REDLOCK__H_DELETING;
    else if (leaving)
        l->id_state = REDLOCK__H_GONE; /* the others keep the key */
    pthread_mutex_unlock(&c->mu);
    return alone;
}

void redlock__handle_end_delete(redlock_lock *l)
{
    redlock_client *c = l->client;
    pthread_mutex_lock(&c->mu);
    l->id_state = REDLOCK__H_ATTEMPT;
    if (c->ids_waiters > 0)
        pthread_cond_broadcast(&c->ids_cv);
    pthread_mutex_unlock(&c->mu);
}

/* Have the node's pending ghost deletes of l's key sent and answered
 * now: a PING's connection carries them (redlock__node_get); on a
 * cluster, an EXISTS of the key, which goes to the master of its slot,
 * the one whose connections carry them.  0 when answered. */
static int send_ghosts(redlock__node *n, const redlock_lock *l,
                       int64_t deadline_ns, char *why, size_t whylen)
{
    redlock__call ping;
    redlock__batch b;
    memset(&ping, 0, sizeof ping);
    memset(&b, 0, sizeof b);
    ping.argc = 1;
    ping.argv[0] = "PING";
    ping.argvlen[0] = 4;
    if (n->cluster) {
        ping.argc = 2;
        ping.argv[0] = "EXISTS";
        ping.argvlen[0] = 6;
        ping.argv[1] = l->key;
        ping.argvlen[1] = l->keylen;
    }
    b.node = n;
    b.calls = &ping;
    b.ncalls = 1;
    redlock__exchange(&b, 1, deadline_ns);
    int rc = b.st == REDLOCK_OK ? 0 : -1;
    snprintf(why, whylen, "%s", b.err);
    redlock__batches_clear(&b, 1);
    return rc;
}

int redlock__handle_claim(redlock_lock *l, int64_t deadline_ns)
{
    redlock_client *c = l->client;
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    while (sibling(c, l, CLAIM_WAITS)) {
        if (redlock__now_ns() >= deadline_ns) {
            rc = -1;
            break;
        }
        c->ids_waiters++;
        redlock__cond_wait_until(&c->ids_cv, &c->mu, deadline_ns);
        c->ids_waiters--;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != 0) {
        redlock__fail(REDLOCK_IO,
                      "\"%.80s\": a release of the same token by this client "
                      "is still in flight",
                      l->key);
        return -1;
    }
    for (int i = 0; i < c->nnodes; i++) {
        int rc;
        while ((rc = redlock__node_claim_ghosts(&c->nodes[i], l->key,
                                                l->keylen, l->token,
                                                deadline_ns)) == 1) {
            char why[256];
            if (send_ghosts(&c->nodes[i], l, deadline_ns, why, sizeof why) !=
                0) {
                /* given up on again: its late window starts anew */
                redlock__fail(REDLOCK_IO,
                              "\"%.80s\": this client's earlier delete of the "
                              "same token, sent again first, did not complete "
                              "(%s)",
                              l->key, why);
                return -1;
            }
        }
        if (rc != 0) {
            redlock__fail(REDLOCK_IO,
                          "%s: \"%.80s\": this client's earlier delete of the "
                          "same token (a release or cleanup that timed out) "
                          "may still arrive; try again",
                          c->nodes[i].name, l->key);
            return -1;
        }
    }
    return 0;
}

void redlock__handles_begin_renew(redlock_lock **ls, int n, char *lower)
{
    if (n == 0)
        return;
    redlock_client *c = ls[0]->client;
    pthread_mutex_lock(&c->mu);
    for (int k = 0; k < n; k++) {
        redlock_lock *l = ls[k];
        lower[k] = l->id_state == REDLOCK__H_HELD && !sibling(c, l, USERS);
        if (lower[k])
            l->id_state = REDLOCK__H_SHORTENING;
    }
    pthread_mutex_unlock(&c->mu);
}

void redlock__handles_end_renew(redlock_lock **ls, int n, const char *lower)
{
    if (n == 0)
        return;
    redlock_client *c = ls[0]->client;
    int any = 0;
    pthread_mutex_lock(&c->mu);
    for (int k = 0; k < n; k++)
        if (lower[k] && ls[k]->id_state == REDLOCK__H_SHORTENING) {
            ls[k]->id_state = REDLOCK__H_HELD; /* unless released meanwhile */
            any = 1;
        }
    if (any && c->ids_waiters > 0)
        pthread_cond_broadcast(&c->ids_cv);
    pthread_mutex_unlock(&c->mu);
}

void redlock__handle_siblings_lost(redlock_lock *l, uint64_t before)
{
    redlock_client *c = l->client;
    pthread_mutex_lock(&c->mu);
    for (redlock_lock *h = c->ids[l->id_hash & (c->ids_cap - 1)]; h;
         h = h->id_next)
        if (h != l && same_id(h, l) &&
            (h->id_state == REDLOCK__H_HELD ||
             h->id_state == REDLOCK__H_SHORTENING) &&
            h->held_seq <= before && atomic_load(&h->held)) {
            redlock__mark_lost(h);
            atomic_store(&h->lost_untold, 1);
        }
    pthread_mutex_unlock(&c->mu);
}

int redlock__handle_has_holder(redlock_lock *l)
{
    redlock_client *c = l->client;
    pthread_mutex_lock(&c->mu);
    int any = sibling(c, l, (1 << REDLOCK__H_HELD) |
                                (1 << REDLOCK__H_SHORTENING));
    pthread_mutex_unlock(&c->mu);
    return any;
}
