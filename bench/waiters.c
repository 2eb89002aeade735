/*
 * redlock-bench: one run of the waiter-scaling scenario (scenario 6).
 *
 * W waiter processes (fork; each makes its own client after the fork, as
 * include/redlock.h asks) loop on one key:
 *   libredlock  redlock_acquire(key, ttl, wait) -> section -> redlock_release
 *   poller      SET key token NX PX ttl, sleeping poll_ns after each refusal
 *               (redis-py's blocking Lock.acquire, sleep 0.1 s by default)
 *               -> section -> EVALSHA of a token-checked delete (its
 *               Lock.release)
 * The section is a sleep of section_ns inside a check of mutual exclusion:
 * a holder counter in shared memory that must go 0 -> 1.  An overlap is
 * printed at once by the waiter that saw it.
 *
 * Every waiter writes its sections (acquire called, acquire returned,
 * release called: CLOCK_MONOTONIC, which is system-wide) into one shared
 * anonymous mapping; the parent reads them after it has reaped everyone.
 * The parent takes INFO at the start and the end of the measured window on
 * a connection of its own (used_cpu_sys + used_cpu_user, and
 * total_commands_processed less what its own INFO counts).
 *
 * Children end with _exit(): they must not run the parent's atexit hook,
 * which kills the redis-servers.  They die with the parent
 * (PR_SET_PDEATHSIG), and the parent kills and reaps, by pid, any of its
 * own that has not finished in time.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <redlock.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 10000   /* the parent's INFO and the pollers' connections */
#define READY_TIMEOUT_NS (60LL * 1000000000)
#define DRAIN_EXTRA_NS (15LL * 1000000000)

/* The poller's release: a token-checked delete, as redis-py's Lock sends. */
#define POLL_RELEASE_LUA                                                      \
    "local token = redis.call('get', KEYS[1]) "                               \
    "if not token or token ~= ARGV[1] then return 0 end "                     \
    "redis.call('del', KEYS[1]) return 1"

enum { ST_IDLE, ST_WAITING, ST_HOLDING, ST_DOOMED };

typedef struct {
    int64_t start, acq, relcall;
    int32_t w, pad;
} w_rec;

typedef struct {
    atomic_int state;
    atomic_llong wait_start;
    atomic_llong looping, left; /* when it entered and left its loop; 0: not */
    atomic_long timeouts;
    char token[80]; /* while holding: for an overlap report */
    char err[200];
} w_slot;

typedef struct {
    atomic_int stop;
    atomic_int ready, failed;
    atomic_int in_cs;
    atomic_int holder; /* waiter + 1 of the last to enter a section */
    atomic_long overlaps;
    atomic_long nrec;
    atomic_long granted_dying;
    atomic_int ov_claimed;
    char ov_detail[256];
    long cap;
} w_shared;

typedef struct {
    w_shared *sh;
    w_slot *slots;
    w_rec *recs;
    const bn_w_config *cfg;
    int w;
} w_ctx;

/* ---- in the waiter processes ------------------------------------------------------ */

static void slot_err(w_slot *s, const char *fmt, ...)
{
    if (s->err[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

static void child_setup(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(3);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Blocks until the parent closes the write end of the go pipe. */
static void wait_go(int fd)
{
    char ch;
    while (read(fd, &ch, 1) < 0 && errno == EINTR) {
    }
}

/* One kind of waiter: how it takes and gives back the lock. */
typedef struct {
    /* 1 holding (*token set), 0 not (its wait ran out, or the run
     * stopped), -1 failed (the slot's err says why) */
    int (*acquire)(void *self, w_ctx *x, const char **token);
    /* 0, or -1 (the slot's err says why) */
    int (*release)(void *self, w_ctx *x);
} w_ops;

/* The critical section: returns the record slot of this section, or NULL
 * when the buffer is full. */
static w_rec *section(w_ctx *x, const char *token)
{
    w_shared *sh = x->sh;
    w_slot *me = &x->slots[x->w];
    long k = atomic_fetch_add(&sh->nrec, 1);
    snprintf(me->token, sizeof me->token, "%s", token);
    int before = atomic_fetch_add(&sh->in_cs, 1);
    int other = atomic_exchange(&sh->holder, x->w + 1) - 1;
    if (before != 0) {
        atomic_fetch_add(&sh->overlaps, 1);
        char msg[256];
        snprintf(msg, sizeof msg,
                 "waiter %d (token %s) entered its section while %d other(s) held "
                 "%s (the last to enter: waiter %d, token %s)",
                 x->w, token, before, x->cfg->key, other,
                 other >= 0 ? x->slots[other].token : "?");
        fprintf(stderr, "redlock-bench: OVERLAP (MUTUAL EXCLUSION VIOLATED): %s\n", msg);
        int zero = 0;
        if (atomic_compare_exchange_strong(&sh->ov_claimed, &zero, 1))
            snprintf(sh->ov_detail, sizeof sh->ov_detail, "%s", msg);
    }
    if (!atomic_load(&sh->stop))
        bn_sleep_ns(x->cfg->section_ns);
    atomic_fetch_sub(&sh->in_cs, 1);
    return k < sh->cap ? &x->recs[k] : NULL;
}

/* acquire -> section -> release until the parent stops the run; 0, or 1
 * when something failed. */
static int waiter_loop(w_ctx *x, const w_ops *ops, void *self)
{
    w_shared *sh = x->sh;
    w_slot *me = &x->slots[x->w];
    atomic_store(&me->looping, bn_now_ns());
    int rc = 0;
    while (!atomic_load(&sh->stop)) {
        int64_t t0 = bn_now_ns();
        atomic_store(&me->wait_start, t0);
        atomic_store(&me->state, ST_WAITING);
        const char *token = NULL;
        int got = ops->acquire(self, x, &token);
        int64_t t1 = bn_now_ns();
        /* WAITING -> HOLDING; when the parent marked this waiter to be
         * killed meanwhile, give back what it got and wait for the signal */
        int expect = ST_WAITING;
        if (!atomic_compare_exchange_strong(&me->state, &expect, ST_HOLDING)) {
            if (got == 1) {
                atomic_fetch_add(&sh->granted_dying, 1);
                ops->release(self, x);
            }
            for (;;)
                pause();
        }
        if (got < 0) {
            rc = 1;
            break;
        }
        if (got == 1) {
            w_rec *r = section(x, token);
            int64_t t2 = bn_now_ns();
            if (r != NULL) {
                r->w = x->w;
                r->start = t0;
                r->acq = t1;
                r->relcall = t2;
            }
            if (ops->release(self, x) != 0) {
                rc = 1;
                break;
            }
        }
        atomic_store(&me->state, ST_IDLE);
    }
    atomic_store(&me->left, bn_now_ns());
    return rc;
}

typedef struct {
    redlock_client *c;
    redlock_lock *l;
} lib_waiter;

static int lib_acquire(void *self, w_ctx *x, const char **token)
{
    lib_waiter *s = self;
    w_slot *me = &x->slots[x->w];
    redlock_status st =
        redlock_acquire(s->c, x->cfg->key, x->cfg->ttl_ms, x->cfg->wait_ms, &s->l);
    if (st == REDLOCK_OK) {
        *token = redlock_token(s->l);
        return 1;
    }
    if (st == REDLOCK_BUSY) {
        atomic_fetch_add(&me->timeouts, 1);
        return 0;
    }
    slot_err(me, "acquire: %s (%s)", redlock_strerror(st), redlock_last_error());
    return -1;
}

static int lib_release(void *self, w_ctx *x)
{
    lib_waiter *s = self;
    redlock_status st = redlock_release(s->l);
    s->l = NULL;
    if (st == REDLOCK_OK)
        return 0;
    slot_err(&x->slots[x->w], "release: %s (%s)", redlock_strerror(st), redlock_last_error());
    return -1;
}

typedef struct {
    redisContext *rc;
    char sha[64];
    char token[64];
    unsigned long seq;
} poll_waiter;

/* SET NX PX: 1 taken, 0 refused, -1 error. */
static int poll_try(poll_waiter *s, const bn_w_config *cfg)
{
    redisReply *r = redisCommand(s->rc, "SET %s %s NX PX %lld", cfg->key, s->token,
                                 (long long)cfg->ttl_ms);
    int res = -1;
    if (r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0)
        res = 1;
    else if (r != NULL && r->type == REDIS_REPLY_NIL)
        res = 0;
    if (r)
        freeReplyObject(r);
    return res;
}

static int poll_acquire(void *self, w_ctx *x, const char **token)
{
    poll_waiter *s = self;
    snprintf(s->token, sizeof s->token, "poller-%d-%lu", x->w, s->seq++);
    int got;
    while ((got = poll_try(s, x->cfg)) == 0 && !atomic_load(&x->sh->stop))
        bn_sleep_ns(x->cfg->poll_ns);
    if (got < 0) {
        slot_err(&x->slots[x->w], "poller SET NX: %s",
                 s->rc->err ? s->rc->errstr : "unexpected reply");
        return -1;
    }
    *token = s->token;
    return got;
}

static int poll_release(void *self, w_ctx *x)
{
    poll_waiter *s = self;
    redisReply *r =
        redisCommand(s->rc, "EVALSHA %s 1 %s %s", s->sha, x->cfg->key, s->token);
    int res = r != NULL && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    if (r)
        freeReplyObject(r);
    if (res == 1)
        return 0;
    slot_err(&x->slots[x->w], "poller release: %s",
             res == 0 ? "the key was not ours any more" : "error");
    return -1;
}

static int child_main(w_ctx *x, int go_fd)
{
    w_shared *sh = x->sh;
    w_slot *me = &x->slots[x->w];
    const bn_w_config *cfg = x->cfg;
    static const w_ops lib_ops = {lib_acquire, lib_release};
    static const w_ops poll_ops = {poll_acquire, poll_release};
    lib_waiter lw = {NULL, NULL};
    poll_waiter pw;
    memset(&pw, 0, sizeof pw);
    if (cfg->kind == BN_W_LIB) {
        redlock_status st;
        const char *url = cfg->url;
        if ((lw.c = redlock_connect(&url, 1, NULL, &st)) == NULL)
            slot_err(me, "redlock_connect: %s (%s)", redlock_strerror(st),
                     redlock_last_error());
    } else {
        bn_url u;
        if (bn_url_parse(cfg->url, &u) == 0 && (pw.rc = bn_url_connect(&u, IO_TIMEOUT_MS))) {
            redisReply *r = redisCommand(pw.rc, "SCRIPT LOAD %s", POLL_RELEASE_LUA);
            if (r != NULL && r->type == REDIS_REPLY_STRING)
                snprintf(pw.sha, sizeof pw.sha, "%s", r->str);
            if (r)
                freeReplyObject(r);
        }
        if (pw.sha[0] == '\0')
            slot_err(me, "poller: cannot connect to %s or load its script", cfg->url);
    }
    int rc = 2;
    if (lw.c != NULL || pw.sha[0] != '\0') {
        atomic_fetch_add(&sh->ready, 1);
        wait_go(go_fd);
        rc = lw.c != NULL ? waiter_loop(x, &lib_ops, &lw) : waiter_loop(x, &poll_ops, &pw);
    } else {
        atomic_fetch_add(&sh->failed, 1);
    }
    redlock_client_free(lw.c);
    if (pw.rc)
        redisFree(pw.rc);
    return rc;
}

/* ---- in the parent ------------------------------------------------------------------ */

typedef struct {
    int64_t t;
    double cpu, cmds;
} w_snap;

static double info_field(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, name, n) == 0 && line[n] == ':')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -1;
}

/* One INFO (every default section): 0 or -1. */
static int take_snap(redisContext *c, w_snap *s)
{
    int64_t a = bn_now_ns();
    redisReply *r = redisCommand(c, "INFO");
    int64_t b = bn_now_ns();
    s->t = a + (b - a) / 2;
    int ok = 0;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        double sys = info_field(r->str, "used_cpu_sys");
        double user = info_field(r->str, "used_cpu_user");
        s->cmds = info_field(r->str, "total_commands_processed");
        s->cpu = sys + user;
        ok = sys >= 0 && user >= 0 && s->cmds >= 0;
    }
    if (!ok)
        fprintf(stderr, "redlock-bench: INFO failed: %s\n",
                r == NULL ? c->errstr : "fields missing");
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

static int cmp_rec_acq(const void *x, const void *y)
{
    const w_rec *a = x, *b = y;
    return (a->acq > b->acq) - (a->acq < b->acq);
}

/* 1 when a waiter other than `holder` was in its loop at time t: the
 * waiters loop without a pause, so one that does not hold the lock (the
 * holder does) is inside an acquire. */
static int wanted_at(const w_slot *slots, int W, int holder, int64_t t)
{
    for (int v = 0; v < W; v++) {
        if (v == holder)
            continue;
        int64_t in = atomic_load(&slots[v].looping), out = atomic_load(&slots[v].left);
        if (in != 0 && in <= t && (out == 0 || t < out))
            return 1;
    }
    return 0;
}

static int analyze(const w_rec *recs, long n, const w_slot *slots, int W, const int *killed,
                   int64_t t_begin, int64_t t_stop, bn_w_result *res)
{
    w_rec *by_acq = malloc((n ? (size_t)n : 1) * sizeof *by_acq);
    long *in_window = calloc((size_t)W, sizeof *in_window);
    bn_samples gaps = {0};
    if (by_acq == NULL || in_window == NULL) {
        free(by_acq);
        free(in_window);
        return -1;
    }
    memcpy(by_acq, recs, (size_t)n * sizeof *recs);
    qsort(by_acq, (size_t)n, sizeof *by_acq, cmp_rec_acq);

    for (long k = 0; k < n; k++) {
        const w_rec *cur = &by_acq[k];
        if (cur->acq < t_begin || cur->acq >= t_stop)
            continue;
        res->sections++;
        in_window[cur->w]++;
        if (k == 0)
            continue;
        const w_rec *prev = &by_acq[k - 1];
        /* an idle gap: the lock was wanted by another waiter when its
         * holder called release (the next holder may be that holder) */
        if (!wanted_at(slots, W, prev->w, prev->relcall))
            continue;
        int64_t gap = cur->acq - prev->relcall;
        if (gap < 0) {
            res->early++;
            fprintf(stderr, "redlock-bench: waiter %d's acquire returned %lld us before "
                            "waiter %d called release (MUTUAL EXCLUSION VIOLATED)\n",
                    cur->w, (long long)(-gap / 1000), prev->w);
            gap = 0;
        }
        bn_samples_push(&gaps, gap);
    }
    res->window_s = (double)(t_stop - t_begin) / 1e9;
    res->rate = (double)res->sections / res->window_s;
    res->gaps = (long)gaps.n;
    res->gap_p50 = bn_percentile(&gaps, 50);
    res->gap_p99 = bn_percentile(&gaps, 99);
    res->gap_max = bn_max(&gaps);
    res->min_w = -1;
    for (int w = 0; w < W; w++) {
        if (killed[w])
            continue;
        if (res->min_w < 0 || in_window[w] < res->min_w)
            res->min_w = in_window[w];
        if (in_window[w] > res->max_w)
            res->max_w = in_window[w];
        if (in_window[w] == 0)
            res->zero_w++;
    }
    res->fairness = res->max_w > 0 ? (double)res->min_w / (double)res->max_w : 0;
    bn_samples_free(&gaps);
    free(by_acq);
    free(in_window);
    return 0;
}

/* SIGKILL k waiters blocked in acquire: those that entered their wait
 * last, but at least `settled` ago (so that they are queued, and far from
 * the head of the line).  Returns how many were killed. */
static int kill_waiters(w_slot *slots, const pid_t *pid, int W, int k,
                        int64_t settled, int *killed)
{
    int done = 0;
    int64_t start = bn_now_ns(), deadline = start + 2000000000LL;
    while (done < k && bn_now_ns() < deadline) {
        int64_t now = bn_now_ns();
        /* after 0.5 s with too few settled waiters, any waiter will do */
        int64_t need = now - start > 500000000LL ? 0 : settled;
        int best = -1;
        int64_t best_t = 0;
        for (int w = 0; w < W; w++) {
            if (killed[w] || pid[w] <= 0 || atomic_load(&slots[w].state) != ST_WAITING)
                continue;
            int64_t t = atomic_load(&slots[w].wait_start);
            if (now - t < need)
                continue;
            if (best < 0 || t > best_t) {
                best = w;
                best_t = t;
            }
        }
        if (best < 0) {
            bn_sleep_ns(1000000);
            continue;
        }
        int expect = ST_WAITING;
        if (!atomic_compare_exchange_strong(&slots[best].state, &expect, ST_DOOMED))
            continue;
        kill(pid[best], SIGKILL);
        atomic_store(&slots[best].left, bn_now_ns());
        killed[best] = 1;
        done++;
    }
    return done;
}

static double rusage_children_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Reap every child not reaped yet, until deadline_ns; then kill and reap
 * the rest.  Returns how many had to be killed. */
static int reap_all(const pid_t *pid, int *status, int *reaped, int n, int64_t deadline_ns)
{
    int left = 0;
    for (int i = 0; i < n; i++)
        left += !reaped[i];
    while (left > 0 && bn_now_ns() < deadline_ns) {
        for (int i = 0; i < n; i++) {
            if (reaped[i])
                continue;
            if (waitpid(pid[i], &status[i], WNOHANG) == pid[i]) {
                reaped[i] = 1;
                left--;
            }
        }
        if (left > 0)
            bn_sleep_ns(5000000);
    }
    int stragglers = 0;
    for (int i = 0; i < n; i++) {
        if (reaped[i])
            continue;
        kill(pid[i], SIGKILL);
        while (waitpid(pid[i], &status[i], 0) < 0 && errno == EINTR) {
        }
        reaped[i] = 1;
        stragglers++;
    }
    return stragglers;
}

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

int bn_w_run(const bn_w_config *cfg, bn_w_result *res)
{
    memset(res, 0, sizeof *res);
    bn_loadavg(res->load_before, sizeof res->load_before);
    int W = cfg->waiters;
    int64_t per = cfg->section_ns > 20000 ? cfg->section_ns : 20000;
    long cap = (long)((cfg->warmup_s + cfg->duration_s + 5) * 1e9 / (double)per) * 2 +
               8L * W + 1024;
    size_t off_slots = round64(sizeof(w_shared));
    size_t off_recs = off_slots + round64((size_t)W * sizeof(w_slot));
    size_t size = off_recs + (size_t)cap * sizeof(w_rec);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        fprintf(stderr, "redlock-bench: mmap %zu bytes: %s\n", size, strerror(errno));
        return -1;
    }
    w_shared *sh = mem;
    w_slot *slots = (w_slot *)((char *)mem + off_slots);
    w_rec *recs = (w_rec *)((char *)mem + off_recs);
    sh->cap = cap;
    pid_t *pid = calloc((size_t)W, sizeof *pid);
    int *status = calloc((size_t)W, sizeof *status);
    int *reaped = calloc((size_t)W, sizeof *reaped);
    int *killed = calloc((size_t)W, sizeof *killed);
    int go[2] = {-1, -1};
    redisContext *ic = NULL;
    int rc = -1, nforked = 0;
    double ccpu0 = rusage_children_s();
    if (pid == NULL || status == NULL || reaped == NULL || killed == NULL)
        goto out;

    /* the parent's own connection, for INFO, and enough clients allowed */
    bn_url u;
    if (bn_url_parse(cfg->url, &u) != 0 || (ic = bn_url_connect(&u, IO_TIMEOUT_MS)) == NULL)
        goto out;
    {
        redisReply *r = redisCommand(ic, "CONFIG GET maxclients");
        long maxclients = -1;
        if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[1]->type == REDIS_REPLY_STRING)
            maxclients = strtol(r->element[1]->str, NULL, 10);
        if (r)
            freeReplyObject(r);
        /* a library client has a command connection and a subscriber */
        if (maxclients >= 0 && maxclients < 2L * W + 16) {
            fprintf(stderr, "redlock-bench: the server allows %ld clients, %d waiters need "
                            "%d (start it with --maxclients 10000 and a higher ulimit -n)\n",
                    maxclients, W, 2 * W + 16);
            goto out;
        }
    }
    if (pipe(go) != 0) {
        fprintf(stderr, "redlock-bench: pipe: %s\n", strerror(errno));
        goto out;
    }

    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    for (int w = 0; w < W; w++) {
        pid_t p = fork();
        if (p < 0) {
            fprintf(stderr, "redlock-bench: fork (waiter %d of %d): %s\n", w, W,
                    strerror(errno));
            atomic_store(&sh->stop, 1);
            break;
        }
        if (p == 0) {
            close(go[1]);
            child_setup(parent);
            w_ctx x = {sh, slots, recs, cfg, w};
            _exit(child_main(&x, go[0]));
        }
        pid[w] = p;
        nforked++;
    }
    close(go[0]);
    go[0] = -1;

    /* everyone connected (or failed) */
    int64_t deadline = bn_now_ns() + READY_TIMEOUT_NS;
    int exited_early = 0;
    while (!atomic_load(&sh->stop) &&
           atomic_load(&sh->ready) + atomic_load(&sh->failed) + exited_early < nforked) {
        if (bn_now_ns() > deadline) {
            fprintf(stderr, "redlock-bench: %d of %d waiters not ready after 60 s\n",
                    nforked - atomic_load(&sh->ready), nforked);
            atomic_store(&sh->stop, 1);
            break;
        }
        for (int w = 0; w < nforked; w++) {
            if (!reaped[w] && waitpid(pid[w], &status[w], WNOHANG) == pid[w]) {
                reaped[w] = 1;
                exited_early++;
            }
        }
        bn_sleep_ns(2000000);
    }
    int ready = !atomic_load(&sh->stop) && atomic_load(&sh->ready) == W;
    if (!ready)
        atomic_store(&sh->stop, 1);

    /* what one INFO counts itself: the least of three back-to-back pairs,
     * the waiters connected and idle */
    w_snap a = {0, 0, 0}, b = a, s0 = a, s1 = a;
    double own = -1;
    for (int i = 0; ready && i < 3; i++) {
        if (take_snap(ic, &a) != 0 || take_snap(ic, &b) != 0) {
            ready = 0;
            atomic_store(&sh->stop, 1);
            break;
        }
        if (own < 0 || b.cmds - a.cmds < own)
            own = b.cmds - a.cmds;
    }
    res->own_info = own;

    close(go[1]); /* go (or, stopped, go away) */
    go[1] = -1;
    if (ready) {
        int64_t t_go = bn_now_ns();
        bn_sleep_until_ns(t_go + (int64_t)(cfg->warmup_s * 1e9));
        int ok = take_snap(ic, &s0) == 0;
        if (ok && cfg->kill > 0) {
            bn_sleep_until_ns(s0.t + (int64_t)(cfg->kill_at_s * 1e9));
            int64_t settled = cfg->section_ns * W / 4;
            if (settled > 20000000)
                settled = 20000000;
            res->killed = kill_waiters(slots, pid, nforked, cfg->kill, settled, killed);
        }
        if (ok)
            bn_sleep_until_ns(s0.t + (int64_t)(cfg->duration_s * 1e9));
        ok = ok && take_snap(ic, &s1) == 0;
        atomic_store(&sh->stop, 1);
        bn_loadavg(res->load_after, sizeof res->load_after);
        if (ok) {
            rc = 0;
            /* totals here, per section after the analysis */
            res->commands = s1.cmds - s0.cmds - own;
            res->server_cpu_us = (s1.cpu - s0.cpu) * 1e6;
        }
    }
    atomic_store(&sh->stop, 1);
    int64_t drain = DRAIN_EXTRA_NS + (cfg->kind == BN_W_LIB ? cfg->wait_ms * 1000000
                                                            : cfg->poll_ns);
    res->stragglers = reap_all(pid, status, reaped, nforked, bn_now_ns() + drain);
    double ccpu1 = rusage_children_s();
    if (res->stragglers > 0)
        fprintf(stderr, "redlock-bench: %d waiters had not finished %lld s after the stop; "
                        "killed\n",
                res->stragglers, (long long)(drain / 1000000000));

    /* how every waiter ended */
    for (int w = 0; w < nforked; w++) {
        int st = status[w];
        int fine = killed[w] ? WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL
                             : WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (fine)
            continue;
        if (res->errors++ == 0) {
            if (slots[w].err[0] != '\0')
                snprintf(res->error, sizeof res->error, "waiter %d: %s", w, slots[w].err);
            else if (WIFSIGNALED(st))
                snprintf(res->error, sizeof res->error, "waiter %d: killed by signal %d", w,
                         WTERMSIG(st));
            else
                snprintf(res->error, sizeof res->error, "waiter %d: exit status %d", w,
                         WEXITSTATUS(st));
        }
    }
    for (int w = 0; w < nforked; w++)
        res->timeouts += atomic_load(&slots[w].timeouts);
    res->overlaps = atomic_load(&sh->overlaps);
    res->granted_dying = atomic_load(&sh->granted_dying);
    snprintf(res->overlap_detail, sizeof res->overlap_detail, "%s", sh->ov_detail);
    if (rc == 0) {
        long total = atomic_load(&sh->nrec);
        long n = total < cap ? total : cap;
        res->dropped = total - n;
        if (analyze(recs, n, slots, W, killed, s0.t, s1.t, res) != 0) {
            rc = -1;
        } else if (res->sections > 0) {
            res->server_cpu_us /= (double)res->sections;
            res->commands /= (double)res->sections;
            res->client_cpu_us = (ccpu1 - ccpu0) * 1e6 / (double)res->sections;
        } else {
            res->server_cpu_us = res->commands = res->client_cpu_us = -1;
        }
    }
    if (!ready && res->errors == 0) {
        res->errors = 1;
        snprintf(res->error, sizeof res->error, "the waiters did not all start");
    }
out:
    if (go[0] >= 0)
        close(go[0]);
    if (go[1] >= 0)
        close(go[1]);
    if (ic)
        redisFree(ic);
    free(pid);
    free(status);
    free(reaped);
    free(killed);
    munmap(mem, size);
    return rc;
}
