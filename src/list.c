/*
 * redlock_list: the locks held now, for an operator.  Each node's keyspace
 * is walked with SCAN (never KEYS, which blocks a server for as long as it
 * takes), only string keys, and each candidate read with the inspect
 * script (value and ttl in one atomic step).  A lock is a key with a ttl
 * whose value a holder recorded (holder_info: "<uuid>;host=...;pid=...;
 * since=..."), or with REDLOCK_LIST_ALL any string key with a ttl; with N
 * nodes, one whose value a quorum of the nodes hold.
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SCAN's COUNT: replies stay far below reply.c's element bound. */
#define SCAN_COUNT "100"

/* One key seen on some node. */
typedef struct seen {
    char *key, *value;
    size_t keylen, vallen;
    int64_t pttl; /* the least among the nodes that agree */
    int votes;
} seen;

/* The keys seen so far (N > 1), with an open-addressing index into v so
 * that a walk of many locks stays linear. */
typedef struct table {
    seen *v;
    size_t n, cap;
    size_t *index; /* entries + 1, 0 = empty; a power of two long */
    size_t nindex;
} table;

static size_t hash(const char *key, size_t len)
{
    size_t h = (size_t)2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * (size_t)16777619u;
    return h;
}

/* Where key is in the index, or the empty place it would go. */
static size_t *place(const table *t, const char *key, size_t keylen)
{
    size_t mask = t->nindex - 1;
    for (size_t i = hash(key, keylen) & mask;; i = (i + 1) & mask) {
        size_t *p = &t->index[i];
        if (!*p || (t->v[*p - 1].keylen == keylen &&
                    memcmp(t->v[*p - 1].key, key, keylen) == 0))
            return p;
    }
}

/* Keep the index at most half full. */
static int grow_index(table *t)
{
    if (t->nindex && (t->n + 1) * 2 <= t->nindex)
        return 0;
    size_t n = t->nindex ? t->nindex * 2 : 128;
    size_t *old = t->index, oldn = t->nindex;
    t->index = calloc(n, sizeof *t->index);
    if (!t->index) {
        t->index = old;
        return -1;
    }
    t->nindex = n;
    for (size_t i = 0; i < oldn; i++)
        if (old[i])
            *place(t, t->v[old[i] - 1].key, t->v[old[i] - 1].keylen) = old[i];
    free(old);
    return 0;
}

/* "<36 chars>;host=H;pid=P;since=S": the parts, or -1. */
static int parse_holder(const char *v, size_t len, char *host, size_t hostlen,
                        long *pid, int64_t *since)
{
    if (len <= REDLOCK__TOKEN_LEN || v[8] != '-' || v[13] != '-' ||
        memchr(v, '\0', len))
        return -1;
    long long s = 0;
    int used = 0;
    char fmt[64];
    snprintf(fmt, sizeof fmt, ";host=%%%zu[^;];pid=%%ld;since=%%lld%%n",
             hostlen - 1);
    if (sscanf(v + REDLOCK__TOKEN_LEN, fmt, host, pid, &s, &used) != 3 ||
        (size_t)used != len - REDLOCK__TOKEN_LEN)
        return -1;
    *since = s;
    return 0;
}

static int is_lock(const char *v, size_t len, int all)
{
    char host[80];
    long pid;
    int64_t since;
    if (len == strlen(REDLOCK__HANDOFF_VALUE) &&
        memcmp(v, REDLOCK__HANDOFF_VALUE, len) == 0)
        return 0; /* between two holders: nobody's */
    return all || parse_holder(v, len, host, sizeof host, &pid, &since) == 0;
}

static int emit(const seen *s, int (*fn)(const redlock_holder *, void *),
                void *arg)
{
    redlock_holder h;
    char host[80];
    memset(&h, 0, sizeof h);
    h.key = s->key;
    h.token = s->value;
    h.pttl_ms = s->pttl;
    if (parse_holder(s->value, s->vallen, host, sizeof host, &h.pid,
                     &h.since_ms) == 0)
        h.host = host;
    else
        h.pid = 0, h.since_ms = 0;
    return fn(&h, arg);
}

static redlock_status add(table *t, const char *key, size_t keylen,
                          const char *value, size_t vallen, int64_t pttl)
{
    if (grow_index(t) != 0)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    size_t *at = place(t, key, keylen);
    if (*at) {
        seen *s = &t->v[*at - 1];
        if (s->vallen == vallen && memcmp(s->value, value, vallen) == 0) {
            s->votes++;
            if (pttl < s->pttl)
                s->pttl = pttl;
        }
        return REDLOCK_OK;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        seen *nv = realloc(t->v, cap * sizeof *nv);
        if (!nv)
            return redlock__fail(REDLOCK_NOMEM, "out of memory");
        t->v = nv;
        t->cap = cap;
    }
    seen *s = &t->v[t->n];
    s->key = malloc(keylen + 1);
    s->value = malloc(vallen + 1);
    if (!s->key || !s->value) {
        free(s->key);
        free(s->value);
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    }
    memcpy(s->key, key, keylen);
    s->key[keylen] = '\0';
    memcpy(s->value, value, vallen);
    s->value[vallen] = '\0';
    s->keylen = keylen;
    s->vallen = vallen;
    s->pttl = pttl;
    s->votes = 1;
    *at = ++t->n;
    return REDLOCK_OK;
}

static void one_call(redlock_client *c, int node, redlock__batch *b,
                     redlock__call *calls, int ncalls)
{
    memset(b, 0, sizeof *b);
    b->node = &c->nodes[node];
    b->calls = calls;
    b->ncalls = ncalls;
}

static int64_t io_deadline(const redlock_client *c)
{
    return redlock__now_ns() + ((int64_t)c->opts.connect_timeout_ms +
                                c->opts.io_timeout_ms) * 1000000;
}

/* Walk node i; each lock goes to fn (N = 1) or into t.  *stop when fn
 * asked to stop. */
static redlock_status walk_one(redlock_client *c, int i,
                               redlock__node *shard, const char *pattern,
                               int all, table *t,
                               int (*fn)(const redlock_holder *, void *),
                               void *arg, int *stop)
{
    char cursor[32] = "0";
    redlock_status st = REDLOCK_OK;
    do {
        redlock__call scan;
        redlock__batch b;
        memset(&scan, 0, sizeof scan);
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT",
                              SCAN_COUNT, "TYPE", "string"};
        for (int k = 0; k < 8; k++) {
            scan.argv[k] = argv[k];
            scan.argvlen[k] = strlen(argv[k]);
        }
        scan.argc = 8;
        scan.shard = shard;
        one_call(c, i, &b, &scan, 1);
        redlock__exchange(&b, 1, io_deadline(c));
        const redisReply *r = scan.reply;
        if (b.st != REDLOCK_OK) {
            st = redlock__fail(b.st, "%s", b.err);
        } else if (r->type == REDIS_REPLY_ERROR) {
            st = redlock__fail(redlock__reply_error_status(r), "%s: SCAN: %s",
                               c->nodes[i].name, r->str);
        } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                   r->element[0]->type != REDIS_REPLY_STRING ||
                   r->element[0]->len >= sizeof cursor ||
                   r->element[1]->type != REDIS_REPLY_ARRAY) {
            st = redlock__fail(REDLOCK_SERVER, "%s: unexpected reply to SCAN",
                               c->nodes[i].name);
        }
        if (st != REDLOCK_OK) {
            redlock__batches_clear(&b, 1);
            return st;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        const redisReply *keys = r->element[1];
        size_t nk = keys->elements;
        redlock__call *calls = nk ? calloc(nk, sizeof *calls) : NULL;
        if (nk && !calls) {
            redlock__batches_clear(&b, 1);
            return redlock__fail(REDLOCK_NOMEM, "out of memory");
        }
        for (size_t k = 0; k < nk; k++) {
            calls[k].script = &redlock__script_inspect;
            calls[k].argc = 1;
            calls[k].argv[0] = keys->element[k]->str;
            calls[k].argvlen[0] = keys->element[k]->len;
        }
        redlock__batch ib;
        one_call(c, i, &ib, calls, (int)nk);
        if (nk)
            redlock__exchange(&ib, 1, io_deadline(c));
        for (size_t k = 0; nk && st == REDLOCK_OK && k < nk && !*stop; k++) {
            const redisReply *v = calls[k].reply;
            if (ib.st != REDLOCK_OK) {
                st = redlock__fail(ib.st, "%s", ib.err);
                break;
            }
            /* {value, pttl}: a key gone since the SCAN has no value */
            if (!v || v->type != REDIS_REPLY_ARRAY || v->elements != 2 ||
                v->element[0]->type != REDIS_REPLY_STRING ||
                v->element[1]->type != REDIS_REPLY_INTEGER ||
                v->element[1]->integer < 0 ||
                !is_lock(v->element[0]->str, v->element[0]->len, all))
                continue;
            if (c->nnodes == 1) {
                seen s = {keys->element[k]->str, v->element[0]->str,
                          keys->element[k]->len, v->element[0]->len,
                          v->element[1]->integer, 1};
                *stop = emit(&s, fn, arg) != 0;
            } else {
                st = add(t, keys->element[k]->str, keys->element[k]->len,
                         v->element[0]->str, v->element[0]->len,
                         v->element[1]->integer);
            }
        }
        if (nk)
            redlock__batches_clear(&ib, 1);
        free(calls);
        redlock__batches_clear(&b, 1);
    } while (st == REDLOCK_OK && !*stop && strcmp(cursor, "0") != 0);
    return st;
}

/* Walk node i; a cluster's every master (each keeps its own keys). */
static redlock_status walk(redlock_client *c, int i, const char *pattern,
                           int all, table *t,
                           int (*fn)(const redlock_holder *, void *),
                           void *arg, int *stop)
{
    redlock__node *n = &c->nodes[i];
    if (!n->cluster)
        return walk_one(c, i, NULL, pattern, all, t, fn, arg, stop);
    redlock__node *m[256];
    redlock_status st = REDLOCK_OK;
    int nm = redlock__cluster_masters(n, m, 256, io_deadline(c), &st);
    if (nm < 0)
        return st;
    for (int k = 0; k < nm && st == REDLOCK_OK && !*stop; k++)
        st = walk_one(c, i, m[k], pattern, all, t, fn, arg, stop);
    return st;
}

redlock_status redlock_list(redlock_client *c, const char *pattern,
                            int flags,
                            int (*fn)(const redlock_holder *h, void *arg),
                            void *arg)
{
    redlock__clear_error();
    if (!c)
        return redlock__fail(REDLOCK_INVALID, "client is NULL");
    if (!fn)
        return redlock__fail(REDLOCK_INVALID, "callback is NULL");
    if (flags & ~REDLOCK_LIST_ALL)
        return redlock__fail(REDLOCK_INVALID, "unknown flags 0x%x", flags);
    if (!pattern || !*pattern)
        pattern = "*";
    table t = {NULL, 0, 0, NULL, 0};
    int stop = 0, walked = 0;
    redlock_status st = REDLOCK_OK, last = REDLOCK_OK;
    char msg[512] = "";
    for (int i = 0; i < c->nnodes && !stop; i++) {
        st = walk(c, i, pattern, flags & REDLOCK_LIST_ALL, &t, fn, arg, &stop);
        if (st == REDLOCK_NOMEM || c->nnodes == 1)
            break;
        if (st != REDLOCK_OK) { /* a quorum of the others may do */
            last = st;
            snprintf(msg, sizeof msg, "%s", redlock_last_error());
            continue;
        }
        walked++;
    }
    if (c->nnodes > 1 && st != REDLOCK_NOMEM) {
        if (walked < c->quorum) {
            st = redlock__fail(last, "list: only %d of %d nodes walked, %d "
                                     "needed (%s)",
                               walked, c->nnodes, c->quorum, msg);
        } else {
            st = REDLOCK_OK;
            for (size_t k = 0; k < t.n && !stop; k++)
                if (t.v[k].votes >= c->quorum)
                    stop = emit(&t.v[k], fn, arg) != 0;
        }
    }
    for (size_t k = 0; k < t.n; k++) {
        free(t.v[k].key);
        free(t.v[k].value);
    }
    free(t.v);
    free(t.index);
    return st;
}
