/*
 * The notifier thread (see notify.c for what it is for): its subscriber
 * connections, one per plain node and one per cluster master that a
 * watched key lives on, kept in line with the watch list; the pushes they
 * bring (messages, confirmations, a slot that moved); and grants.
 */
#include "notify.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every wait for a grant: check again, one may have been missed. */
void redlock__notifier_bump_grants(struct redlock_notifier *nf)
{
    nf->grant_gen++;
    for (redlock__grant *g = nf->grants; g; g = g->next)
        pthread_cond_signal(&g->cv);
}

static void bump_all(struct redlock_notifier *nf)
{
    for (redlock__watch *w = nf->watches; w; w = w->next)
        w->gen++;
    redlock__notifier_bump_grants(nf);
    pthread_cond_broadcast(&nf->cond);
}


/* Subscribe to the client's grant channel on s: SSUBSCRIBE (a shard
 * channel, Redis 7: see the release script), or SUBSCRIBE on an older
 * server, which refused SSUBSCRIBE once (plain). */
static int queue_grant_sub(redlock__conn *s, const redlock_client *c,
                           int plain)
{
    char ch[sizeof GRANT_PREFIX + REDLOCK__GRANT_ID_LEN];
    size_t plen = strlen(GRANT_PREFIX);
    memcpy(ch, GRANT_PREFIX, plen);
    memcpy(ch + plen, c->grant_id, REDLOCK__GRANT_ID_LEN);
    const char *argv[] = {plain ? "SUBSCRIBE" : "SSUBSCRIBE", ch};
    size_t len[] = {strlen(argv[0]), plen + REDLOCK__GRANT_ID_LEN};
    return redlock__resp_append(&s->out, 2, argv, len);
}

static int is_grant_channel(const redlock_client *c, const redisReply *ch)
{
    size_t plen = strlen(GRANT_PREFIX);
    return ch->len == plen + REDLOCK__GRANT_ID_LEN &&
           memcmp(ch->str, GRANT_PREFIX, plen) == 0 &&
           memcmp(ch->str + plen, c->grant_id, REDLOCK__GRANT_ID_LEN) == 0;
}

static int parse_u64(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *q = *p;
    if (q >= end || *q < '0' || *q > '9')
        return -1;
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*q - '0');
    }
    if (q >= end || *q != ' ')
        return -1;
    *p = q + 1;
    *out = v;
    return 0;
}

/* A grant: "<seq> <fence> <ttl> <keylen> <key><token>" (release
 * script).  The wait it names, if it still waits, holds the lock now. */
static void handle_grant(struct redlock_notifier *nf, const redisReply *m)
{
    const char *p = m->str, *end = m->str + m->len;
    uint64_t seq, fence, ttl, keylen;
    if (parse_u64(&p, end, &seq) || parse_u64(&p, end, &fence) ||
        parse_u64(&p, end, &ttl) || parse_u64(&p, end, &keylen) ||
        keylen > (uint64_t)(end - p))
        return;
    const char *key = p, *tok = p + keylen;
    size_t toklen = (size_t)(end - tok);
    for (redlock__grant *g = nf->grants; g; g = g->next) {
        if (g->seq != seq || strlen(g->token) != toklen ||
            memcmp(g->token, tok, toklen) != 0)
            continue;
        int slot = -1;
        if (g->sem) { /* "<name>:redlock:<slot>" (redlock__slot_name) */
            char *pre = malloc(g->keylen + REDLOCK__NAME_EXTRA);
            if (!pre)
                return; /* the wait checks its place by itself */
            size_t plen =
                redlock__derived_name(nf->c, g->key, g->keylen, ":redlock:", pre);
            int same = keylen > plen && memcmp(key, pre, plen) == 0;
            free(pre);
            const char *d = key + plen, *e = key + keylen;
            if (!same || e - d > 9)
                continue;
            if (*d == '0' && e - d > 1)
                continue; /* "07" is no slot's name */
            for (slot = 0; d < e && *d >= '0' && *d <= '9'; d++)
                slot = slot * 10 + (*d - '0');
            if (d != e || slot >= g->sem)
                continue; /* not one of our n slots */
        } else if (g->keylen != keylen || memcmp(g->key, key, keylen) != 0) {
            continue;
        }
        g->slot = slot;
        g->granted = 1;
        g->fence = fence > INT64_MAX ? 0 : (int64_t)fence;
        g->ttl = ttl > INT64_MAX ? 0 : (int64_t)ttl;
        pthread_cond_signal(&g->cv); /* that thread alone */
        return;
    }
}

/* Queue (UN)SUBSCRIBE of w's channel on connection s; on a cluster's
 * master (sharded), S(UN)SUBSCRIBE of its shard channel. */
static int queue_sub(redlock__conn *s, const redlock__watch *w, int on,
                     int sharded)
{
    if (sharded) {
        const char *argv[] = {on ? "SSUBSCRIBE" : "SUNSUBSCRIBE", w->sch};
        size_t len[] = {strlen(argv[0]), w->schlen};
        return redlock__resp_append(&s->out, 2, argv, len);
    }
    size_t plen = strlen(REDLOCK__CHANNEL_PREFIX);
    char *ch = malloc(plen + w->keylen);
    if (!ch)
        return -1;
    memcpy(ch, REDLOCK__CHANNEL_PREFIX, plen);
    memcpy(ch + plen, w->key, w->keylen);
    const char *argv[] = {on ? "SUBSCRIBE" : "UNSUBSCRIBE", ch};
    size_t len[] = {strlen(argv[0]), plen + w->keylen};
    int rc = redlock__resp_append(&s->out, 2, argv, len);
    free(ch);
    return rc;
}

/* Open a subscriber connection to node i, or to a cluster's master
 * (shard), blocking this thread for at most the connect and I/O timeouts;
 * PING completes the AUTH/SELECT handshake. */
static redlock__conn *open_sub(struct redlock_notifier *nf, int i,
                               redlock__node *shard)
{
    redlock_client *c = nf->c;
    redlock_status st;
    redlock__node *to = shard ? shard : &c->nodes[i];
    redlock__conn *s = redlock__node_connect(to, &st);
    if (!s)
        return NULL;
    redlock__call ping;
    memset(&ping, 0, sizeof ping);
    ping.argc = 1;
    ping.argv[0] = "PING";
    ping.argvlen[0] = 4;
    redlock__batch b;
    memset(&b, 0, sizeof b);
    b.node = to;
    b.conn = s;
    b.calls = &ping;
    b.ncalls = 1;
    b.pending = 1;
    if (redlock__conn_append_call(s, &ping, 0) != 0 ||
        (c->queued && !shard && queue_grant_sub(s, c, nf->grant_plain) != 0)) {
        redlock__conn_free(s);
        return NULL;
    }
    redlock__io_run(&b, 1, redlock__now_ns() +
                               ((int64_t)c->opts.connect_timeout_ms +
                                c->opts.io_timeout_ms) * 1000000);
    if (ping.reply)
        redlock__reply_free(ping.reply);
    if (b.st != REDLOCK_OK) {
        redlock__conn_free(s);
        return NULL;
    }
    return s;
}

static void unlink_watch(struct redlock_notifier *nf, redlock__watch *w)
{
    for (redlock__watch **pp = &nf->watches; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    free(w->key);
    free(w->sch);
    free(w);
}

/* The entry for node i's master shard (made when new): its index, or -1
 * when out of memory. */
static int entry_for(struct redlock_notifier *nf, int i, redlock__node *shard)
{
    for (int e = 0; e < nf->nsubs; e++)
        if (nf->subs[e].node == i && nf->subs[e].shard == shard)
            return e;
    if (nf->nsubs == nf->subs_cap) {
        int cap = nf->subs_cap ? 2 * nf->subs_cap : 8;
        subconn *grown = realloc(nf->subs, (size_t)cap * sizeof *grown);
        struct pollfd *pfd = realloc(nf->pfd, (size_t)(cap + 1) * sizeof *pfd);
        if (pfd)
            nf->pfd = pfd;
        int *idx = realloc(nf->idx, (size_t)(cap + 1) * sizeof *idx);
        if (idx)
            nf->idx = idx;
        if (grown)
            nf->subs = grown;
        if (!grown || !pfd || !idx)
            return -1;
        nf->subs_cap = cap;
    }
    nf->subs[nf->nsubs] = (subconn){i, shard, NULL, 0};
    return nf->nsubs++;
}

/* A watch on cluster node i goes where the map puts its channel's slot
 * now: unsubscribed from the old master (which may have done so itself)
 * and subscribed on the new one at the next sync_watches. */
static void reroute(struct redlock_notifier *nf, redlock__watch *w, int i)
{
    w->on[i] = -1;
    w->confirmed = 0; /* until subscribed again */
    w->gen++; /* a release may have gone unheard: retry */
    if (w->grant)
        redlock__notifier_bump_grants(nf); /* so may a grant */
    redlock__cluster_stale(&nf->c->nodes[i]);
    pthread_cond_broadcast(&nf->cond);
}

static void drop_sub(struct redlock_notifier *nf, int e)
{
    subconn *sc = &nf->subs[e];
    redlock__conn_free(sc->conn);
    sc->conn = NULL;
    sc->retry_ns = redlock__now_ns() + (int64_t)RECONNECT_MS * 1000000;
    nf->live--;
    nf->grant_confirmed = 0;
    /* A cluster's master that failed may be replaced: its channels go
     * wherever the map says next. */
    if (sc->shard)
        for (redlock__watch *w = nf->watches; w; w = w->next)
            if (w->on[sc->node] == e)
                reroute(nf, w, sc->node);
    /* Subscriptions die with their connection: whatever was draining is
     * gone there, and its confirmation will never come.  (Swept by
     * sync_watches, where freeing is safe.) */
    for (redlock__watch *w = nf->watches; w; w = w->next)
        if (w->draining)
            w->unconfirmed = 0;
}

/* The watch of a channel: the draining one, or the live one. */
static redlock__watch *find(struct redlock_notifier *nf, const char *ch,
                            size_t len, int draining)
{
    size_t plen = strlen(REDLOCK__CHANNEL_PREFIX);
    if (len < plen || memcmp(ch, REDLOCK__CHANNEL_PREFIX, plen) != 0)
        return NULL;
    for (redlock__watch *w = nf->watches; w; w = w->next)
        if (w->draining == draining && !w->grant &&
            ((w->keylen == len - plen &&
              memcmp(w->key, ch + plen, w->keylen) == 0) ||
             (w->sch && w->schlen == len && memcmp(w->sch, ch, len) == 0)))
            return w;
    return NULL;
}

/* The grant watch of a cluster's grant channel ch. */
static redlock__watch *find_grant(struct redlock_notifier *nf, const char *ch,
                                  size_t len, int draining)
{
    for (redlock__watch *w = nf->watches; w; w = w->next)
        if (w->grant && w->draining == draining && w->schlen == len &&
            memcmp(w->sch, ch, len) == 0)
            return w;
    return NULL;
}

/* A push only a cluster's master sends: its SSUBSCRIBE refused (MOVED:
 * the slot is elsewhere), or "sunsubscribe" of a channel we still want
 * (the slot moved away from it).  1 when the connection must be dropped
 * (and everything on it placed again). */
static int cluster_push(struct redlock_notifier *nf, subconn *sc,
                        const redisReply *r)
{
    redlock__node *n = &nf->c->nodes[sc->node];
    if (r->type == REDIS_REPLY_ERROR) {
        /* Which SSUBSCRIBE it answers is not said: every channel here
         * whose slot the map (told of the MOVED) now puts elsewhere. */
        if (!redlock__cluster_redirected(n, sc->shard, r))
            return 1; /* TRYAGAIN, CLUSTERDOWN...: all again, in a while */
        for (redlock__watch *w = nf->watches; w; w = w->next)
            if (w->on[sc->node] == (int)(sc - nf->subs) &&
                redlock__cluster_lookup(
                    n, redlock__key_slot(w->sch, w->schlen)) != sc->shard)
                reroute(nf, w, sc->node);
        return 0;
    }
    redlock__watch *w = find(nf, r->element[1]->str, r->element[1]->len, 0);
    if (!w)
        w = find_grant(nf, r->element[1]->str, r->element[1]->len, 0);
    if (w && w->on[sc->node] == (int)(sc - nf->subs))
        reroute(nf, w, sc->node);
    return 0;
}

/* A push from a subscriber connection: ["message", ch, payload] or
 * ["subscribe", ch, n] wake the key's waiters; on the grant channel, a
 * message grants one wait.  -1 when the connection must be dropped. */
static int handle_push(struct redlock_notifier *nf, subconn *sc,
                       const redisReply *r)
{
    redlock__conn *s = sc->conn;
    if (sc->shard && r->type == REDIS_REPLY_ERROR)
        return cluster_push(nf, sc, r);
    if (r->type == REDIS_REPLY_ERROR && nf->c->queued && !nf->grant_plain &&
        !nf->grant_confirmed) {
        /* SSUBSCRIBE refused (unknown before Redis 7): SUBSCRIBE instead;
         * the release script publishes the same way on such a server. */
        nf->grant_plain = 1;
        return queue_grant_sub(s, nf->c, 1);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING)
        return 0;
    const char *kind = r->element[0]->str;
    int is_sub = strcmp(kind, "subscribe") == 0 ||
                 (sc->shard && strcmp(kind, "ssubscribe") == 0);
    redlock__watch *gw =
        sc->shard ? find_grant(nf, r->element[1]->str, r->element[1]->len,
                               strcmp(kind, "sunsubscribe") == 0)
                  : NULL;
    if (gw) { /* a cluster's grant channel */
        if (is_sub) {
            gw->confirmed = 1;
            redlock__notifier_bump_grants(nf);
        } else if (strcmp(kind, "smessage") == 0 && r->elements == 3 &&
                   r->element[2]->type == REDIS_REPLY_STRING) {
            handle_grant(nf, r->element[2]);
        } else if (strcmp(kind, "sunsubscribe") == 0) {
            gw->unconfirmed--; /* swept by sync_watches at 0 */
        }
        return 0;
    }
    if (is_grant_channel(nf->c, r->element[1])) {
        if (is_sub || strcmp(kind, "ssubscribe") == 0) {
            nf->grant_confirmed = 1;
            redlock__notifier_bump_grants(nf);
        } else if ((strcmp(kind, "message") == 0 ||
                    strcmp(kind, "smessage") == 0) &&
                   r->elements == 3 &&
                   r->element[2]->type == REDIS_REPLY_STRING) {
            handle_grant(nf, r->element[2]);
        }
        return 0;
    }
    if (strcmp(kind, "unsubscribe") == 0 ||
        (sc->shard && strcmp(kind, "sunsubscribe") == 0)) {
        redlock__watch *w = find(nf, r->element[1]->str, r->element[1]->len, 1);
        if (w)
            w->unconfirmed--; /* swept by sync_watches at 0 */
        else if (sc->shard)
            return cluster_push(nf, sc, r); /* not ours: the slot moved */
        return 0;
    }
    if (!is_sub && strcmp(kind, "message") != 0 &&
        !(sc->shard && strcmp(kind, "smessage") == 0))
        return 0;
    redlock__watch *w = find(nf, r->element[1]->str, r->element[1]->len, 0);
    if (!w)
        return 0;
    if (is_sub)
        w->confirmed = 1;
    w->gen++;
    pthread_cond_broadcast(&nf->cond);
    return 0;
}

/* Handle every push already read from sc's connection; -1 when it must be
 * dropped. */
static int drain(struct redlock_notifier *nf, subconn *sc)
{
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(sc->conn->ctx, &reply) != REDIS_OK)
            return -1;
        if (!reply)
            return 0;
        int bad = handle_push(nf, sc, reply) != 0;
        redlock__reply_free(reply);
        if (bad)
            return -1;
    }
}

/* Subscribe w on cluster node i's master of its slot, as the map says
 * (without asking: this runs under mu; a waiter's tries refresh the map);
 * called with mu held. */
static void place(struct redlock_notifier *nf, redlock__watch *w, int i)
{
    redlock__node *n = &nf->c->nodes[i];
    redlock__node *m =
        redlock__cluster_lookup(n, redlock__key_slot(w->sch, w->schlen));
    int e = m ? entry_for(nf, i, m) : -1;
    if (e < 0) { /* look again soon */
        int64_t at = redlock__now_ns() + (int64_t)RECONNECT_MS * 1000000;
        if (nf->resync_ns == 0 || at < nf->resync_ns)
            nf->resync_ns = at;
        return;
    }
    w->on[i] = e;
    subconn *sc = &nf->subs[e];
    if (!sc->conn) { /* to be opened: by the loop, now (or when due) */
        int64_t at = sc->retry_ns > 0 ? sc->retry_ns : 1;
        if (nf->resync_ns == 0 || at < nf->resync_ns)
            nf->resync_ns = at;
    } else if (queue_sub(sc->conn, w, 1, 1) != 0) {
        drop_sub(nf, e);
    }
}

/* Bring the subscriber connections in line with the watch list; called
 * with nf->mu held. */
static void sync_watches(struct redlock_notifier *nf)
{
    redlock_client *c = nf->c;
    redlock__watch *w = nf->watches;
    nf->resync_ns = 0;
    while (w) { /* sweep what is fully unsubscribed */
        redlock__watch *next = w->next;
        if (w->draining && w->unconfirmed <= 0)
            unlink_watch(nf, w);
        w = next;
    }
    for (w = nf->watches; w; w = w->next) {
        if (w->draining)
            continue;
        int unsub = w->refs == 0;
        if (unsub || !w->announced) {
            int sent = 0;
            for (int e = 0; e < nf->nsubs; e++) {
                subconn *sc = &nf->subs[e];
                if (!sc->conn || (sc->shard && w->on[sc->node] != e) ||
                    (!sc->shard && w->grant))
                    continue;
                if (sc->shard && !unsub)
                    continue; /* placed below */
                if (queue_sub(sc->conn, w, !unsub, sc->shard != NULL) != 0)
                    drop_sub(nf, e);
                else
                    sent++;
            }
            w->announced = 1;
            if (unsub) {
                /* Kept until confirmed: meanwhile the server still counts
                 * this subscription as a listener of the key's releases
                 * (see redlock__notify_draining).  With no connection
                 * up it is swept next time. */
                w->draining = 1;
                w->unconfirmed = sent;
                continue;
            }
        }
        for (int i = 0; w->sch && i < c->nnodes; i++) {
            if (!c->nodes[i].cluster)
                continue;
            if (w->on[i] >= 0) {
                /* The map moved the slot (a MOVED, a failover): leave the
                 * old master, which may be a replica now and keep us,
                 * with copies of what its master publishes. */
                subconn *sc = &nf->subs[w->on[i]];
                redlock__node *m = redlock__cluster_lookup(
                    &c->nodes[i], redlock__key_slot(w->sch, w->schlen));
                if (!m || m == sc->shard)
                    continue;
                int e = w->on[i];
                if (sc->conn && queue_sub(sc->conn, w, 0, 1) != 0)
                    drop_sub(nf, e);
                reroute(nf, w, i);
            }
            place(nf, w, i);
        }
    }
}

static void *notifier_main(void *arg)
{
    struct redlock_notifier *nf = arg;
    redlock_client *c = nf->c;

    pthread_mutex_lock(&nf->mu);
    while (!nf->stop) {
        /* (Re)open what is down and due; it may block for a timeout, so
         * not under the mutex. */
        int64_t now = redlock__now_ns(), next_retry = INT64_MAX;
        for (int e = 0; e < nf->nsubs; e++) {
            subconn *sc = &nf->subs[e];
            if (sc->conn)
                continue;
            int wanted = !sc->shard;
            for (redlock__watch *w = nf->watches; w && !wanted; w = w->next)
                wanted = w->refs > 0 && w->on[sc->node] == e;
            if (!wanted)
                continue; /* a master no watched key lives on now */
            if (sc->retry_ns > now) {
                if (sc->retry_ns < next_retry)
                    next_retry = sc->retry_ns;
                continue;
            }
            int node = sc->node;
            redlock__node *shard = sc->shard;
            pthread_mutex_unlock(&nf->mu);
            redlock__conn *s = open_sub(nf, node, shard);
            pthread_mutex_lock(&nf->mu);
            sc = &nf->subs[e]; /* the list may have grown meanwhile */
            if (!s) {
                sc->retry_ns = redlock__now_ns() +
                               (int64_t)RECONNECT_MS * 1000000;
                if (sc->retry_ns < next_retry)
                    next_retry = sc->retry_ns;
                if (shard) /* its master may be gone: look where now */
                    for (redlock__watch *w = nf->watches; w; w = w->next)
                        if (w->on[node] == e)
                            reroute(nf, w, node);
                continue;
            }
            sc->conn = s;
            nf->live++;
            /* The handshake's read may have taken in more than the PING's
             * answer (the grant channel's confirmation): no new data would
             * wake the poll for it. */
            if (drain(nf, sc) != 0) {
                drop_sub(nf, e);
                continue;
            }
            /* Everything must be subscribed here anew, and releases may
             * have gone unheard meanwhile: let every waiter retry. */
            for (redlock__watch *w = nf->watches; w; w = w->next)
                if (w->refs > 0 && !w->draining &&
                    (shard ? w->on[node] == e : !w->grant) &&
                    queue_sub(s, w, 1, shard != NULL) != 0)
                    break;
            bump_all(nf);
        }
        sync_watches(nf);
        if (nf->resync_ns && nf->resync_ns < next_retry)
            next_retry = nf->resync_ns;

        struct pollfd *pfd = nf->pfd;
        int *idx = nf->idx;
        int k = 0, ready = 0;
        pfd[k].fd = nf->wake[0];
        pfd[k].events = POLLIN;
        idx[k++] = -1;
        for (int e = 0; e < nf->nsubs; e++) {
            subconn *sc = &nf->subs[e];
            redlock__conn *s = sc->conn;
            if (!s)
                continue;
            /* The sentinels moved the master: releases are published
             * there now, and this server may never close us (a demoted
             * master keeps its subscribers). */
            if (!sc->shard && s->gen != atomic_load(&c->nodes[sc->node].gen)) {
                drop_sub(nf, e);
                sc->retry_ns = 0;
                if (next_retry > 0)
                    next_retry = 0;
                continue;
            }
            if (redlock__conn_flush(s) != 0) {
                drop_sub(nf, e);
                continue;
            }
            pfd[k].fd = s->ctx->fd;
            pfd[k].events = redlock__conn_events(s, s->sent < s->out.len, 1);
            if (redlock__tls_pending(s))
                ready = 1;
            idx[k++] = e;
        }
        pthread_mutex_unlock(&nf->mu);
        int timeout = -1;
        if (next_retry != INT64_MAX) {
            int64_t ms = (next_retry - redlock__now_ns() + 999999) / 1000000;
            timeout = ms < 0 ? 0 : (int)ms;
        }
        int rc = poll(pfd, (nfds_t)k, ready ? 0 : timeout);
        pthread_mutex_lock(&nf->mu);
        if (rc < 0 || (rc == 0 && !ready))
            continue;
        for (int j = 0; j < k; j++) {
            if (!pfd[j].revents &&
                (idx[j] < 0 || !nf->subs[idx[j]].conn ||
                 !redlock__tls_pending(nf->subs[idx[j]].conn)))
                continue;
            if (idx[j] < 0) {
                char buf[64];
                while (read(nf->wake[0], buf, sizeof buf) > 0)
                    ;
                continue;
            }
            int e = idx[j];
            redlock__conn *s = nf->subs[e].conn;
            if (!s)
                continue;
            /* TLS tries both ways whatever woke it (see io.c: step). */
            if ((s->ssl || (pfd[j].revents & POLLOUT)) &&
                redlock__conn_flush(s) != 0) {
                drop_sub(nf, e);
                continue;
            }
            if (!s->ssl && !(pfd[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (redlock__conn_read(s) != 0 || redlock__reply_too_big(s->ctx)) {
                drop_sub(nf, e);
                continue;
            }
            if (drain(nf, &nf->subs[e]) != 0)
                drop_sub(nf, e);
        }
    }
    pthread_mutex_unlock(&nf->mu);
    return NULL;
}

struct redlock_notifier *redlock__notifier_start(redlock_client *c)
{
    struct redlock_notifier *nf = calloc(1, sizeof *nf);
    if (!nf)
        return NULL;
    nf->c = c;
    for (int i = 0; i < c->nnodes; i++)
        if (!c->nodes[i].cluster && entry_for(nf, i, NULL) < 0)
            break;
    if (!nf->pfd && !(nf->pfd = malloc(sizeof *nf->pfd)))
        nf->nsubs = -1;
    if (!nf->idx && !(nf->idx = malloc(sizeof *nf->idx)))
        nf->nsubs = -1;
    if (nf->nsubs < 0 || pipe2(nf->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(nf->subs);
        free(nf->pfd);
        free(nf->idx);
        free(nf);
        return NULL;
    }
    pthread_mutex_init(&nf->mu, NULL);
    redlock__cond_init_monotonic(&nf->cond);
    if (redlock__thread_start(&nf->thread, notifier_main, nf) != 0) {
        close(nf->wake[0]);
        close(nf->wake[1]);
        pthread_cond_destroy(&nf->cond);
        pthread_mutex_destroy(&nf->mu);
        free(nf->subs);
        free(nf->pfd);
        free(nf->idx);
        free(nf);
        return NULL;
    }
    return nf;
}
