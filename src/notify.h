/*
 * Shared by notify.c (what waiting threads call) and notifier.c (the
 * notifier thread and its subscriber connections): their state.  Private
 * to those two files.
 */
#ifndef REDLOCK_NOTIFY_H
#define REDLOCK_NOTIFY_H

#include "internal.h"

#include <poll.h>

#define GRANT_PREFIX "redlock:grant:"

/* After a subscriber connection fails, wait this long before the next. */
#define RECONNECT_MS 500

struct redlock__watch {
    char *key;
    size_t keylen;
    /* A cluster client's shard channel (redlock__release_channel), else
     * NULL; and, per cluster node, the entry (nf->subs) it is subscribed
     * on, -1 for none yet. */
    char *sch;
    size_t schlen;
    int on[REDLOCK_MAX_NODES];
    /* A cluster's grant channel for the queue named by key (see
     * redlock__notify_expect), not a key's release channel. */
    int grant;
    int refs;       /* waiting threads; 0: to be unsubscribed */
    int announced;  /* SUBSCRIBE queued on the live connections */
    int confirmed;  /* some node confirmed the subscription */
    int draining;   /* UNSUBSCRIBE queued; freed once every node confirms */
    int unconfirmed; /* UNSUBSCRIBEs not yet confirmed */
    uint64_t gen;
    struct redlock__watch *next;
};

struct redlock_notifier {
    redlock_client *c;
    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below but the thread's conns */
    pthread_cond_t cond; /* monotonic: some generation moved */
    int wake[2];         /* pipe: the watch list changed, or stop */
    int stop;
    redlock__watch *watches;
    int live;            /* subscriber connections up */
    redlock__grant *grants; /* waits listening on the grant channel */
    uint64_t grant_gen;  /* moves when grants may have been missed */
    int grant_confirmed; /* the grant channel is subscribed */
    int grant_plain;     /* the server knows no SSUBSCRIBE (before 7) */
    /* Subscriber connections (the thread's own, but the list is guarded
     * by mu): one per plain node, one per cluster master in use. */
    struct subconn *subs;
    int nsubs, subs_cap;
    int64_t resync_ns; /* look at the watches again then (a slot whose
                          master is not known yet) */
    struct pollfd *pfd;
    int *idx;
};

typedef struct subconn {
    int node;             /* index in c->nodes */
    redlock__node *shard; /* a cluster's master, or NULL for a plain node */
    redlock__conn *conn;
    int64_t retry_ns;
} subconn;

/* Every wait for a grant: check again, one may have been missed (mu
 * held). */
void redlock__notifier_bump_grants(struct redlock_notifier *nf);
/* A client's notifier, its thread started; NULL when it cannot run. */
struct redlock_notifier *redlock__notifier_start(redlock_client *c);

#endif
