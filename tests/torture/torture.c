/*
 * redlock_torture: many processes and threads fight over a few locks while
 * a fault injector kills, stops, pauses and flushes the Redis nodes under
 * them; afterwards every critical section is checked against every other.
 *
 *   redlock_torture [--seed N] [--duration S] [--processes P] [--threads T]
 *                   [--keys K] [--nodes N] [--scenario A,B,...] [--log DIR]
 *                   [--probes yes|no|only]
 *
 * First the probes (probes.c): short deterministic fault sequences, each
 * reproducing one way a lock was found to break, so that it fails every
 * time and not once in many seeds.  Then the random scenarios:
 *
 * Scenarios (all by default; --duration is shared among them by weight):
 *   1node-aof    1 node, AOF appendfsync always, fencing.       strict
 *   1node-mem    1 node, no persistence, fencing.               lax
 *   Nnode-mem    N nodes (Redlock), no persistence, majority
 *                restarts.                                      lax
 *   Nnode-aof    N nodes, AOF appendfsync always, majority
 *                restarts.                                      strict
 *
 * How a run goes.  The driver starts the nodes (tests/support), maps a
 * shared log, forks P children and then injects faults on a schedule drawn
 * from the seed: kill -9 and restart of a node (or of a majority, all at
 * once or one after another), SIGSTOP for longer than the I/O timeout then
 * SIGCONT, CLIENT KILL TYPE normal and TYPE pubsub, CLIENT PAUSE (ALL or
 * WRITE), SCRIPT FLUSH and DEBUG SLEEP.  Each child makes its own client
 * after the fork (shared by its T threads) and each thread, until the
 * deadline, takes a random key with a short ttl (300..1200 ms) and a short
 * wait, works a short while (75 %: < 30 ms; 17 %: < ttl/3; 8 %: ttl/2 to
 * 2 ttl, kept alive), keeps it alive (those, and half the others),
 * sometimes extends it (a fifth of the sections, at 5 % of their checks, to
 * a new random ttl), and while working,
 * every 1..5 ms, checks redlock_validity_ms()/redlock_held() and, when
 * told it still holds the lock, commits (a write to a fenced resource that
 * counts stale fences).  It stops at the first check that says held 0 or
 * validity 0, or when its work is done, then releases (96 %) or detaches.
 * A per-key occupancy counter in the shared map counts live collisions.
 * At the end each child frees its client and checks that the descriptors
 * and threads it had before connecting are all it has left.
 *
 * The record of a section (tests/torture/torture.h) holds: key, token,
 * fence, start = when redlock_acquire() returned, end = when release (or
 * detach) was called, valid_until = t + validity at its last check that
 * said held (t taken before the read), lost_at = the first check that said
 * held 0 or validity 0 (t taken after the read), the on_lost callback's
 * time, an extend's NOT_HELD, and the release's status and return time.
 *
 * The rules (check.c), all on CLOCK_MONOTONIC, which is one clock for every
 * process of the machine:
 *   told(S)   = min(lost_at, callback, extend NOT_HELD, valid_until): when S
 *               knew it held nothing any more, or its promised validity ran
 *               out (after which S never committed anything).
 *   Two sections A, B of one key with A.start <= B.start < A.end overlap.
 *   The overlap is EXPLAINED when told(A) <= B.start (or told(B) <=
 *   A.start): the earlier holder had been told before the other acquired.
 *   Otherwise it is REPORTED when either was told at some time or had its
 *   release answer NOT_HELD; UNDETERMINED when neither, but a release failed
 *   with IO/SERVER or was a detach; else UNREPORTED.
 *   A SILENT LOSS is a NOT_HELD verdict (held 0, callback, extend, release)
 *   that came more than 2 ms before the validity last given ran out: the
 *   key was gone while the library still promised it.
 *   Fences of one key must strictly increase in order of start.
 * Strict scenarios (the nodes keep their keys: AOF, appendfsync always)
 * fail on any overlap that is not explained, any silent loss and any fence
 * that does not increase.  Lax scenarios (no persistence: a restarted node
 * forgets, which Redlock cannot survive) expect overlaps and fail only on an
 * UNREPORTED one: the library must tell one of the two holders.  Every
 * scenario fails on a child that crashed or hung, a status that must never
 * come (AUTH, INVALID, NOMEM), an acquire that answered BUSY before its
 * wait ran out, a call that ran more than 3 s past its bound (the wait
 * asked for; every call is bounded by the timeouts), no sections at all,
 * or a checker whose own test fails.  An explained overlap means a holder was told in time but
 * its thread had not yet reached redlock_release() when the next holder
 * began (scheduling); it never committed after being told.
 *
 * Exit status: 0 all scenarios passed, 1 a violation, 2 setup failed, 64
 * usage.
 */
#include "torture.h"

#include "redis_server.h"
#include "redlock.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEYS 16
#define MAX_PROCS 32
#define MAX_THREADS 32
#define MAX_NODES 9
#define MAX_FAULTS 8192
#define REC_CAP ((long)1 << 19)
#define NMSG 12
#define MS ((int64_t)1000000)

/* Client options of the workers. */
#define CONNECT_MS 250
#define IO_MS 250
#define NODE_MS_QUORUM 150
#define RETRY_MS 30
#define TTL_MIN 300
#define TTL_MAX 1200

/* ---- time and randomness ----------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void sleep_ms(int64_t ms) { sleep_ns(ms * MS); }

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static int64_t range(uint64_t *s, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)(splitmix(s) % (uint64_t)(hi - lo + 1));
}

/* ---- configuration ------------------------------------------------------------- */

typedef struct scenario {
    const char *name; /* "N" replaced by the node count when printed */
    int multi;        /* N nodes, else 1 */
    int aof;
    int fencing;
    int strict;
    int weight;       /* share of --duration */
    const char *what;
} scenario;

static const scenario scenarios[] = {
    {"1node-aof", 0, 1, 1, 1, 35,
     "1 node, AOF appendfsync always, fencing: no overlap, fences rise"},
    {"1node-mem", 0, 0, 1, 0, 15,
     "1 node, no persistence, fencing: overlaps after restarts, reported"},
    {"Nnode-mem", 1, 0, 0, 0, 30,
     "Redlock, no persistence: overlaps after majority restarts, reported"},
    {"Nnode-aof", 1, 1, 0, 1, 20,
     "Redlock, AOF appendfsync always: no overlap"},
};
#define NSCEN ((int)(sizeof scenarios / sizeof scenarios[0]))

typedef struct config {
    uint64_t seed;
    double duration_s;
    int procs, threads, keys, nodes;
    unsigned mask; /* scenarios to run */
    const char *logdir;
    int probes;    /* 0 no, 1 yes, 2 only */
} config;

/* ---- faults ---------------------------------------------------------------------- */

enum fault_kind {
    F_KILL,          /* kill -9 one node, restart it */
    F_KILL_MAJORITY, /* kill -9 and restart a majority */
    F_STOP,          /* SIGSTOP, longer than the I/O timeout, SIGCONT */
    F_CLIENT_KILL,   /* CLIENT KILL TYPE normal */
    F_KILL_PUBSUB,   /* CLIENT KILL TYPE pubsub (the release notifier) */
    F_PAUSE,         /* CLIENT PAUSE ms ALL|WRITE */
    F_FLUSH,         /* SCRIPT FLUSH */
    F_SLEEP,         /* DEBUG SLEEP */
    NFAULT
};

static const char *const fault_names[NFAULT] = {
    "kill9+restart", "kill9+restart-majority", "sigstop/sigcont",
    "client-kill-normal", "client-kill-pubsub", "client-pause",
    "script-flush", "debug-sleep"};

/* Weights of the kinds, per scenario (in the order of scenarios[]):
 * restarts weigh more where they are what breaks the lock. */
static const int fault_weight[][NFAULT] = {
    {3, 0, 2, 2, 1, 2, 2, 2}, /* 1node-aof */
    {5, 0, 1, 1, 1, 1, 1, 1}, /* 1node-mem */
    {2, 4, 1, 1, 1, 1, 1, 1}, /* Nnode-mem */
    {2, 3, 2, 2, 1, 2, 1, 2}, /* Nnode-aof */
};
_Static_assert(sizeof fault_weight / sizeof fault_weight[0] == NSCEN,
               "one row of fault weights per scenario");

typedef struct fault {
    int64_t t;
    int kind;
    unsigned nodes; /* bit mask */
    int ms;         /* its length, when it has one */
    int ok;
    char note[48];
} fault;

/* ---- what the processes share ------------------------------------------------ */

typedef struct shared {
    int64_t t0, deadline;
    _Atomic long nrec;
    _Atomic long dropped;
    _Atomic long occupancy[MAX_KEYS];
    _Atomic long occ_collisions;
    _Atomic int64_t resource_fence[MAX_KEYS];
    _Atomic long stale_writes;
    _Atomic long acq[8], ext[8], keepalive_err;
    /* Bounds: how far calls ran past what they may take. */
    _Atomic int64_t acq_over_max, rel_max, ext_max;
    _Atomic long early_busy, late_calls;
    _Atomic long unexpected;
    _Atomic int nmsg, nserver_msg;
    char msg[NMSG][200];
    long cap;
    t_rec recs[];
} shared;

static void note_msg(shared *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_msg(shared *sh, const char *fmt, ...)
{
    int i = atomic_fetch_add(&sh->nmsg, 1);
    if (i >= NMSG)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->msg[i], sizeof sh->msg[i], fmt, ap);
    va_end(ap);
}

/* ---- the children: workers --------------------------------------------------- */

typedef struct slot {
    _Atomic(const redlock_lock *) lock;
    _Atomic int64_t cb_at;
} slot;

static slot g_slots[MAX_THREADS];
static int g_nthreads;

/* on_lost, on the watchdog thread: stamp the section of whoever holds l. */
static void on_lost(const redlock_lock *l, void *arg)
{
    (void)arg;
    int64_t t = now_ns();
    for (int i = 0; i < g_nthreads; i++)
        if (atomic_load(&g_slots[i].lock) == l) {
            int64_t never = T_NEVER;
            atomic_compare_exchange_strong(&g_slots[i].cb_at, &never, t);
        }
}

typedef struct worker {
    shared *sh;
    redlock_client *c;
    const config *cfg;
    const scenario *sc;
    int proc, thread;
    uint64_t rng;
    pthread_t tid;
} worker;

static int unexpected_status(redlock_status st)
{
    return st == REDLOCK_AUTH || st == REDLOCK_INVALID || st == REDLOCK_NOMEM;
}

/* One check: 1 = still held (a commit follows), 0 = told it is lost. */
static int check(worker *w, t_rec *r, const redlock_lock *l)
{
    int64_t t1 = now_ns();
    int64_t v = redlock_validity_ms(l);
    int held = redlock_held(l);
    int64_t t2 = now_ns();
    if (v > 0 && held) {
        r->last_ok = t1;
        r->valid_until = t1 + v * MS;
        return 1;
    }
    r->lost_at = t2;
    if (!held)
        r->flags |= T_F_LOST_HELD0;
    (void)w;
    return 0;
}

/* A write to the protected resource, which refuses fences older than the
 * newest it has seen (what fencing is for). */
static void commit(shared *sh, t_rec *r)
{
    r->commits++;
    if (r->fence <= 0)
        return;
    _Atomic int64_t *f = &sh->resource_fence[r->key];
    int64_t cur = atomic_load(f);
    for (;;) {
        if (r->fence < cur) {
            atomic_fetch_add(&sh->stale_writes, 1);
            return;
        }
        if (r->fence == cur ||
            atomic_compare_exchange_weak(f, &cur, r->fence))
            return;
    }
}

/* Every call is bounded by the timeouts (plus the wait asked for): a
 * call that took longer than LATE_MS past that is counted as late. */
#define LATE_MS 3000

static void bound(shared *sh, _Atomic int64_t *max, int64_t over_ns)
{
    int64_t cur = atomic_load(max);
    while (over_ns > cur && !atomic_compare_exchange_weak(max, &cur, over_ns)) {
    }
    if (over_ns > LATE_MS * MS)
        atomic_fetch_add(&sh->late_calls, 1);
}

static void append_rec(shared *sh, const t_rec *r)
{
    long i = atomic_fetch_add(&sh->nrec, 1);
    if (i >= sh->cap) {
        atomic_fetch_add(&sh->dropped, 1);
        return;
    }
    t_rec *d = &sh->recs[i];
    d->start = r->start;
    d->end = r->end;
    d->rel_ret = r->rel_ret;
    d->acq_call = r->acq_call;
    d->valid_until = r->valid_until;
    d->last_ok = r->last_ok;
    d->lost_at = r->lost_at;
    d->cb_at = r->cb_at;
    d->ext_lost_at = r->ext_lost_at;
    d->fence = r->fence;
    d->ttl_ms = r->ttl_ms;
    d->key = r->key;
    d->proc = r->proc;
    d->thread = r->thread;
    d->flags = r->flags;
    d->release_st = r->release_st;
    d->commits = r->commits;
    memcpy(d->token, r->token, sizeof d->token);
    atomic_store(&d->done, 1);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    slot *sl = &g_slots[w->thread];
    char key[32];

    while (now_ns() < sh->deadline) {
        int k = (int)range(&w->rng, 0, w->cfg->keys - 1);
        snprintf(key, sizeof key, "torture:%d", k);
        int64_t ttl = range(&w->rng, TTL_MIN, TTL_MAX);
        int64_t wait, dice = range(&w->rng, 0, 9);
        if (dice < 2)
            wait = 0;
        else if (dice < 9)
            wait = range(&w->rng, 20, 800);
        else
            wait = 1500;
        int64_t left = (sh->deadline - now_ns()) / MS;
        if (wait > left)
            wait = left > 0 ? left : 0;

        redlock_lock *l = NULL;
        int64_t t_call = now_ns();
        redlock_status st = redlock_acquire(w->c, key, ttl, wait, &l);
        int64_t took = now_ns() - t_call;
        atomic_fetch_add(&sh->acq[st & 7], 1);
        bound(sh, &sh->acq_over_max, took - wait * MS);
        if (st == REDLOCK_BUSY && took < (wait - 5) * MS) {
            atomic_fetch_add(&sh->early_busy, 1);
            note_msg(sh, "acquire: BUSY after %.1f ms of a %" PRId64
                         " ms wait",
                     (double)took / 1e6, wait);
        }
        if (st != REDLOCK_OK) {
            if (unexpected_status(st)) {
                atomic_fetch_add(&sh->unexpected, 1);
                note_msg(sh, "acquire: %s: %s", redlock_strerror(st),
                         redlock_last_error());
            } else if (st == REDLOCK_SERVER &&
                       atomic_fetch_add(&sh->nserver_msg, 1) < 2) {
                note_msg(sh, "acquire: SERVER: %s", redlock_last_error());
            }
            if (st != REDLOCK_BUSY)
                sleep_ms(range(&w->rng, 5, 30));
            continue;
        }

        t_rec r;
        memset(&r, 0, sizeof r);
        r.start = now_ns();
        r.acq_call = t_call;
        r.key = k;
        r.proc = w->proc;
        r.thread = w->thread;
        r.ttl_ms = ttl;
        r.fence = redlock_fence(l);
        r.lost_at = r.cb_at = r.ext_lost_at = T_NEVER;
        r.valid_until = r.last_ok = r.start;
        snprintf(r.token, sizeof r.token, "%s", redlock_token(l));
        if (atomic_fetch_add(&sh->occupancy[k], 1) > 0)
            atomic_fetch_add(&sh->occ_collisions, 1);
        atomic_store(&sl->cb_at, T_NEVER);
        atomic_store(&sl->lock, l);

        /* Most sections are short; some outlive their ttl (kept alive). */
        int64_t work, shape = range(&w->rng, 0, 99);
        if (shape < 75)
            work = range(&w->rng, 0, 30);
        else if (shape < 92)
            work = range(&w->rng, 0, ttl / 3);
        else
            work = range(&w->rng, ttl / 2, 2 * ttl);
        int keep = shape >= 92 || range(&w->rng, 0, 9) < 5;
        int alive = check(w, &r, l);
        if (alive && keep) {
            r.flags |= T_F_KEEPALIVE;
            st = redlock_keepalive(l);
            if (st != REDLOCK_OK && st != REDLOCK_NOT_HELD) {
                atomic_fetch_add(&sh->keepalive_err, 1);
                note_msg(sh, "keepalive: %s: %s", redlock_strerror(st),
                         redlock_last_error());
            }
        }
        int64_t work_end = r.start + work * MS;
        if (work_end > sh->deadline)
            work_end = sh->deadline;
        /* A fifth of the sections extend, at 5 % of their checks. */
        int extender = range(&w->rng, 0, 99) < 20;
        if (alive)
            commit(sh, &r);
        while (alive && now_ns() < work_end) {
            sleep_ms(range(&w->rng, 1, 5));
            if (extender && range(&w->rng, 0, 99) < 5) {
                r.flags |= T_F_EXTENDED;
                int64_t t0 = now_ns();
                st = redlock_extend(l, range(&w->rng, TTL_MIN, TTL_MAX));
                int64_t t = now_ns();
                bound(sh, &sh->ext_max, t - t0);
                atomic_fetch_add(&sh->ext[st & 7], 1);
                if (st == REDLOCK_NOT_HELD) {
                    r.ext_lost_at = t;
                    break;
                }
                if (unexpected_status(st)) {
                    atomic_fetch_add(&sh->unexpected, 1);
                    note_msg(sh, "extend: %s: %s", redlock_strerror(st),
                             redlock_last_error());
                }
            }
            if ((alive = check(w, &r, l)))
                commit(sh, &r);
        }
        atomic_fetch_sub(&sh->occupancy[k], 1);

        r.end = now_ns();
        if (range(&w->rng, 0, 99) < 4) {
            redlock_detach(l);
            r.release_st = T_DETACHED;
            r.flags |= T_F_DETACHED;
        } else {
            st = redlock_release(l);
            bound(sh, &sh->rel_max, now_ns() - r.end);
            r.release_st = (int32_t)st;
            if (unexpected_status(st)) {
                atomic_fetch_add(&sh->unexpected, 1);
                note_msg(sh, "release: %s: %s", redlock_strerror(st),
                         redlock_last_error());
            }
        }
        r.rel_ret = now_ns();
        /* Release and detach wait for a callback in progress. */
        r.cb_at = atomic_load(&sl->cb_at);
        atomic_store(&sl->lock, NULL);
        append_rec(sh, &r);
        sleep_ms(range(&w->rng, 0, 10));
    }
    return NULL;
}

/* Entries of a /proc/self directory (fd, task): to find descriptors or
 * threads a client left behind. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void child_main(shared *sh, const config *cfg, const scenario *sc,
                       const char *const *urls, int n, int proc,
                       pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(3);
    redlock_options o;
    redlock_options_init(&o);
    o.connect_timeout_ms = CONNECT_MS;
    o.io_timeout_ms = IO_MS;
    o.node_timeout_ms = n > 1 ? NODE_MS_QUORUM : 0;
    o.retry_delay_ms = RETRY_MS;
    o.renew_floor_ms = 0;
    o.fencing = sc->fencing;
    o.on_lost = on_lost;
    o.on_lost_arg = NULL;

    int fds_before = count_entries("/proc/self/fd");
    int threads_before = count_entries("/proc/self/task");
    redlock_client *c = NULL;
    redlock_status st = REDLOCK_OK;
    while (!c && now_ns() < sh->deadline) {
        c = redlock_connect(urls, (size_t)n, &o, &st);
        if (!c) {
            if (unexpected_status(st)) {
                atomic_fetch_add(&sh->unexpected, 1);
                note_msg(sh, "connect: %s: %s", redlock_strerror(st),
                         redlock_last_error());
                exit(4);
            }
            sleep_ms(100);
        }
    }
    if (!c) {
        fprintf(stderr, "torture: child %d: no connection: %s\n", proc,
                redlock_last_error());
        exit(4);
    }

    g_nthreads = cfg->threads;
    worker w[MAX_THREADS];
    int started = 0;
    for (int i = 0; i < cfg->threads; i++) {
        atomic_init(&g_slots[i].lock, NULL);
        atomic_init(&g_slots[i].cb_at, T_NEVER);
        w[i] = (worker){.sh = sh, .c = c, .cfg = cfg, .sc = sc, .proc = proc,
                        .thread = i};
        w[i].rng = cfg->seed ^ ((uint64_t)(proc + 1) << 40) ^
                   ((uint64_t)(i + 1) << 24) ^ (uint64_t)getpid();
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "torture: child %d: pthread_create failed\n",
                    proc);
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(w[i].tid, NULL);
    redlock_client_free(c);
    /* Everything the client made must be gone with it. */
    int fds_after = count_entries("/proc/self/fd");
    int threads_after = count_entries("/proc/self/task");
    if (fds_after != fds_before || threads_after != threads_before) {
        fprintf(stderr,
                "torture: child %d: after redlock_client_free: %d "
                "descriptors (%d before connect), %d threads (%d before)\n",
                proc, fds_after, fds_before, threads_after, threads_before);
        exit(6);
    }
    exit(started == cfg->threads ? 0 : 5);
}

/* ---- the parent: servers and faults -------------------------------------------- */

typedef struct cluster {
    int n;
    rt_server s[MAX_NODES];
    int aof;
} cluster;

static int cluster_start(cluster *cl, int n, int aof)
{
    static const char *const aof_args[] = {"--appendonly", "yes",
                                           "--appendfsync", "always", NULL};
    memset(cl, 0, sizeof *cl);
    cl->aof = aof;
    for (int i = 0; i < n; i++) {
        if (rt_server_start(&cl->s[i], aof ? aof_args : NULL) != 0) {
            for (int j = 0; j < i; j++)
                rt_server_stop(&cl->s[j]);
            return -1;
        }
        cl->s[i].cmd_timeout_ms = 3000;
        cl->n++;
    }
    return 0;
}

static void cluster_stop(cluster *cl)
{
    for (int i = 0; i < cl->n; i++)
        rt_server_stop(&cl->s[i]);
}

/* A node may be left stopped or dead by a failed fault: bring it back. */
static void cluster_heal(cluster *cl)
{
    for (int i = 0; i < cl->n; i++) {
        if (cl->s[i].pid > 0)
            rt_server_resume(&cl->s[i]);
        else
            rt_server_restart(&cl->s[i]);
    }
}

static int cmd_ok(rt_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* 1 when the command got any non-error answer. */
static int cmd_ok(rt_server *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = rt_vcmd(s, NULL, NULL, fmt, ap);
    va_end(ap);
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok;
}

static int pick_kind(uint64_t *rng, int scen)
{
    int total = 0;
    for (int k = 0; k < NFAULT; k++)
        total += fault_weight[scen][k];
    int x = (int)range(rng, 0, total - 1);
    for (int k = 0; k < NFAULT; k++) {
        if (x < fault_weight[scen][k])
            return k;
        x -= fault_weight[scen][k];
    }
    return F_FLUSH;
}

/* Inject one fault, synchronously (a stopped node is resumed, a killed one
 * restarted, before this returns). */
static void inject(cluster *cl, uint64_t *rng, int scen, fault *f)
{
    int node = (int)range(rng, 0, cl->n - 1);
    rt_server *s = &cl->s[node];
    f->kind = pick_kind(rng, scen);
    f->nodes = 1u << node;
    f->ok = 1;
    f->t = now_ns();
    switch (f->kind) {
    case F_KILL:
        f->ms = (int)range(rng, 0, 400);
        rt_server_kill(s);
        sleep_ms(f->ms);
        f->ok = rt_server_restart(s) == 0;
        break;
    case F_KILL_MAJORITY: {
        int q = cl->n / 2 + 1, order[MAX_NODES];
        for (int i = 0; i < cl->n; i++)
            order[i] = i;
        for (int i = cl->n - 1; i > 0; i--) {
            int j = (int)range(rng, 0, i), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        f->nodes = 0;
        for (int i = 0; i < q; i++)
            f->nodes |= 1u << order[i];
        f->ms = (int)range(rng, 0, 300);
        if (range(rng, 0, 1)) {
            snprintf(f->note, sizeof f->note, "all at once");
            for (int i = 0; i < q; i++)
                rt_server_kill(&cl->s[order[i]]);
            sleep_ms(f->ms);
            for (int i = 0; i < q; i++)
                f->ok &= rt_server_restart(&cl->s[order[i]]) == 0;
        } else {
            snprintf(f->note, sizeof f->note, "one after another");
            for (int i = 0; i < q; i++) {
                rt_server_kill(&cl->s[order[i]]);
                sleep_ms(f->ms / q);
                f->ok &= rt_server_restart(&cl->s[order[i]]) == 0;
            }
        }
        break;
    }
    case F_STOP:
        f->ms = (int)range(rng, IO_MS + 50, 1500);
        f->ok = rt_server_pause(s) == 0;
        sleep_ms(f->ms);
        f->ok &= rt_server_resume(s) == 0;
        break;
    case F_CLIENT_KILL:
        f->ok = cmd_ok(s, "CLIENT KILL TYPE normal");
        break;
    case F_KILL_PUBSUB:
        f->ok = cmd_ok(s, "CLIENT KILL TYPE pubsub");
        break;
    case F_PAUSE: {
        int all = (int)range(rng, 0, 1);
        f->ms = (int)range(rng, 100, 1000);
        snprintf(f->note, sizeof f->note, "%s", all ? "ALL" : "WRITE");
        f->ok = cmd_ok(s, "CLIENT PAUSE %d %s", f->ms, all ? "ALL" : "WRITE");
        break;
    }
    case F_FLUSH:
        f->ok = cmd_ok(s, "SCRIPT FLUSH");
        break;
    case F_SLEEP:
        f->ms = (int)range(rng, 100, 1000);
        f->ok = cmd_ok(s, "DEBUG SLEEP %d.%03d", f->ms / 1000, f->ms % 1000);
        break;
    }
}

/* ---- one scenario -------------------------------------------------------------------- */

static void print_faults(FILE *out, const fault *fl, int nf, int64_t t0)
{
    for (int i = 0; i < nf; i++) {
        char nodes[64] = "";
        size_t len = 0;
        for (int b = 0; b < MAX_NODES; b++)
            if (fl[i].nodes & (1u << b))
                len += (size_t)snprintf(nodes + len, sizeof nodes - len,
                                        "%s%d", len ? "," : "", b);
        fprintf(out, "    %10.3f ms  %-22s node %-9s %5d ms %s%s\n",
                (double)(fl[i].t - t0) / 1e6, fault_names[fl[i].kind], nodes,
                fl[i].ms, fl[i].note, fl[i].ok ? "" : " (FAILED)");
    }
}

static void dump_log(const config *cfg, const char *name, const shared *sh,
                     long n, const fault *fl, int nf)
{
    if (!cfg->logdir)
        return;
    mkdir(cfg->logdir, 0777);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.sections.tsv", cfg->logdir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "key\tproc\tthread\ttoken\tfence\tttl\tflags\tacq_call\t"
                   "start\tlast_ok\tvalid_until\tlost_at\tcb_at\text_lost_at\t"
                   "end\trel_ret\trelease\tcommits\n");
        for (long i = 0; i < n; i++) {
            const t_rec *r = &sh->recs[i];
            if (!atomic_load(&r->done))
                continue;
#define REL(x) ((x) == T_NEVER ? -1.0 : (double)((x) - sh->t0) / 1e6)
            fprintf(f,
                    "%d\t%d\t%d\t%s\t%" PRId64 "\t%" PRId64 "\t%d\t%.3f\t%.3f\t"
                    "%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%d\n",
                    r->key, r->proc, r->thread, r->token, r->fence, r->ttl_ms,
                    r->flags, REL(r->acq_call), REL(r->start), REL(r->last_ok),
                    REL(r->valid_until), REL(r->lost_at), REL(r->cb_at),
                    REL(r->ext_lost_at), REL(r->end), REL(r->rel_ret),
                    r->release_st, r->commits);
#undef REL
        }
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/%s.faults.txt", cfg->logdir, name);
    if ((f = fopen(path, "w"))) {
        print_faults(f, fl, nf, sh->t0);
        fclose(f);
    }
}

/* Wait for the children until hard_deadline; a child still running then
 * is a hang: its threads' stacks are shown (gdb, when there) and it is
 * killed.  Returns the number of children that failed. */
static int reap_children(pid_t *pids, int n, int64_t hard_deadline,
                         double hang_s)
{
    int failed = 0, left = n;
    while (left > 0) {
        for (int i = 0; i < n; i++) {
            if (pids[i] <= 0)
                continue;
            int status;
            pid_t r = waitpid(pids[i], &status, WNOHANG);
            if (r != pids[i])
                continue;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                failed++;
                if (WIFSIGNALED(status))
                    printf("  CHILD %d (pid %d) died of signal %d\n", i,
                           (int)pids[i], WTERMSIG(status));
                else
                    printf("  CHILD %d (pid %d) exited with status %d\n", i,
                           (int)pids[i], WEXITSTATUS(status));
            }
            pids[i] = 0;
            left--;
        }
        if (left == 0)
            break;
        if (now_ns() > hard_deadline) {
            for (int i = 0; i < n; i++) {
                if (pids[i] <= 0)
                    continue;
                printf("  CHILD %d (pid %d) HUNG: still running %.0f s after "
                       "the deadline; its threads:\n",
                       i, (int)pids[i], hang_s);
                fflush(stdout);
                if (access("/usr/bin/gdb", X_OK) == 0) {
                    char cmd[256];
                    snprintf(cmd, sizeof cmd,
                             "gdb -q -batch -p %d -ex 'thread apply all bt' "
                             "2>/dev/null | grep -E '^(#|Thread)' | head -150",
                             (int)pids[i]);
                    if (system(cmd) != 0) {
                    }
                }
                kill(pids[i], SIGKILL);
                waitpid(pids[i], NULL, 0);
                pids[i] = 0;
                failed++;
                left--;
            }
            break;
        }
        sleep_ms(20);
    }
    return failed;
}

static const char *status_short(int st)
{
    static const char *const n[8] = {"ok",  "busy",  "not-held", "io",
                                     "server", "auth", "invalid", "nomem"};
    return st >= 0 && st < 8 ? n[st] : "?";
}

static void print_counts(const char *label, _Atomic long *v)
{
    printf("  %-9s", label);
    for (int i = 0; i < 8; i++) {
        long x = atomic_load(&v[i]);
        if (x)
            printf(" %s %ld", status_short(i), x);
    }
    printf("\n");
}

typedef struct totals {
    long sections, overlaps, faults, violations;
    int failed;
} totals;

static int run_scenario(const config *cfg, const scenario *sc, double secs,
                        uint64_t sched_seed, totals *tot)
{
    int n = sc->multi ? cfg->nodes : 1;
    char name[32];
    snprintf(name, sizeof name, "%s", sc->name);
    if (sc->multi)
        name[0] = (char)('0' + (n % 10));
    printf("\n==== %s: %s\n", name, sc->what);
    printf("  %d node(s)%s, %d processes x %d threads, %d keys, %.1f s, "
           "seed %" PRIu64 "\n",
           n, sc->aof ? " with AOF appendfsync always" : ", no persistence",
           cfg->procs, cfg->threads, cfg->keys, secs, cfg->seed);
    fflush(stdout);

    cluster cl;
    if (cluster_start(&cl, n, sc->aof) != 0) {
        printf("  SETUP FAILED: cannot start %d redis-server(s)\n", n);
        return 2;
    }
    const char *urls[MAX_NODES];
    for (int i = 0; i < n; i++)
        urls[i] = cl.s[i].url;

    size_t size = sizeof(shared) + sizeof(t_rec) * (size_t)REC_CAP;
    shared *sh = mmap(NULL, size, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sh == MAP_FAILED) {
        printf("  SETUP FAILED: mmap: %s\n", strerror(errno));
        cluster_stop(&cl);
        return 2;
    }
    sh->cap = REC_CAP;
    sh->t0 = now_ns();
    sh->deadline = sh->t0 + (int64_t)(secs * 1e9);

    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid(), pids[MAX_PROCS];
    int nchild = 0;
    for (int p = 0; p < cfg->procs; p++) {
        pid_t pid = fork();
        if (pid < 0) {
            printf("  fork: %s\n", strerror(errno));
            break;
        }
        if (pid == 0)
            child_main(sh, cfg, sc, urls, n, p, parent);
        pids[nchild++] = pid;
    }

    /* The fault injector, until the deadline. */
    static fault fl[MAX_FAULTS];
    int nf = 0;
    uint64_t rng = sched_seed;
    int64_t quiet = 300 * MS; /* let the workers start */
    while (nf < MAX_FAULTS) {
        int64_t gap = nf == 0 ? quiet : range(&rng, 150, 900) * MS;
        if (now_ns() + gap >= sh->deadline - 200 * MS)
            break;
        sleep_ns(gap);
        memset(&fl[nf], 0, sizeof fl[nf]);
        inject(&cl, &rng, (int)(sc - scenarios), &fl[nf]);
        nf++;
    }
    cluster_heal(&cl);
    sleep_ns(sh->deadline - now_ns());

    int bad_children = 0;
    if (nchild < cfg->procs)
        bad_children++;
    bad_children += reap_children(pids, nchild, sh->deadline + 20000 * MS, 20);
    double took = (double)(now_ns() - sh->t0) / 1e9;

    long nrec = atomic_load(&sh->nrec);
    if (nrec > sh->cap)
        nrec = sh->cap;
    t_result res;
    printf("  -- violations --\n");
    t_check(sh->recs, nrec, sc->strict, &res, stdout, sh->t0, 10);

    long fk[NFAULT] = {0}, failed_faults = 0;
    for (int i = 0; i < nf; i++) {
        fk[fl[i].kind]++;
        failed_faults += !fl[i].ok;
    }
    printf("  -- summary (%.1f s) --\n", took);
    printf("  faults    %d:", nf);
    for (int k = 0; k < NFAULT; k++)
        if (fk[k])
            printf(" %s %ld", fault_names[k], fk[k]);
    printf("%s\n", failed_faults ? " (some FAILED to apply)" : "");
    print_counts("acquire", sh->acq);
    print_counts("extend", sh->ext);
    printf("  sections  %ld (commits %ld, keepalive %ld, extended %ld, "
           "detached %ld)\n",
           res.sections, res.commits, res.keepalive, res.extended,
           res.detached);
    printf("  told lost %ld while inside: validity 0 %ld, held 0 (watchdog) "
           "%ld, extend NOT_HELD %ld; on_lost callbacks %ld\n",
           res.told, res.told_validity, res.told_held0, res.told_extend,
           res.callbacks);
    printf("  release  ");
    for (int i = 0; i < 8; i++)
        if (res.rel[i])
            printf(" %s %ld", status_short(i), res.rel[i]);
    printf(" (detached %ld)\n", res.detached);
    printf("  overlaps  %ld: explained %ld, reported later %ld, "
           "undetermined %ld, unreported %ld; live occupancy collisions "
           "%ld\n",
           res.overlaps, res.explained, res.reported, res.undetermined,
           res.unreported, atomic_load(&sh->occ_collisions));
    printf("  losses    %ld NOT_HELD before the validity given ran out "
           "(silent)\n",
           res.silent);
    if (sc->fencing)
        printf("  fences    %ld successive pairs, %ld did not increase; the "
               "fenced resource refused %ld stale writes\n",
               res.fence_pairs, res.fence_back,
               atomic_load(&sh->stale_writes));
    printf("  bounds    acquire ran %.0f ms past its wait at most; release "
           "took %.0f ms, extend %.0f ms at most (I/O timeout %d ms)\n",
           (double)atomic_load(&sh->acq_over_max) / 1e6,
           (double)atomic_load(&sh->rel_max) / 1e6,
           (double)atomic_load(&sh->ext_max) / 1e6, IO_MS);
    int nmsg = atomic_load(&sh->nmsg);
    for (int i = 0; i < nmsg && i < NMSG; i++)
        printf("  message   %s\n", sh->msg[i]);

    long violations = res.violations;
    if (res.sections == 0) {
        printf("  FAIL: no critical section at all\n");
        violations++;
    }
    if (atomic_load(&sh->unexpected) > 0) {
        printf("  FAIL: %ld unexpected statuses (AUTH, INVALID, NOMEM)\n",
               atomic_load(&sh->unexpected));
        violations++;
    }
    if (atomic_load(&sh->early_busy) > 0) {
        printf("  FAIL: %ld acquires gave up (BUSY) before their wait ran "
               "out\n",
               atomic_load(&sh->early_busy));
        violations++;
    }
    if (atomic_load(&sh->late_calls) > 0) {
        printf("  FAIL: %ld calls ran more than %d ms past their bound\n",
               atomic_load(&sh->late_calls), LATE_MS);
        violations++;
    }
    if (atomic_load(&sh->keepalive_err) > 0) {
        printf("  FAIL: redlock_keepalive failed %ld times\n",
               atomic_load(&sh->keepalive_err));
        violations++;
    }
    if (atomic_load(&sh->occ_collisions) > 0 && res.overlaps == 0 &&
        atomic_load(&sh->dropped) == 0) {
        printf("  FAIL: live collisions but no overlap in the log: the "
               "checker is wrong\n");
        violations++;
    }
    if (atomic_load(&sh->dropped) > 0)
        printf("  note: %ld records dropped (log full)\n",
               atomic_load(&sh->dropped));
    if (secs >= 5 && nf == 0) {
        printf("  FAIL: no fault injected\n");
        violations++;
    }
    if (bad_children) {
        printf("  FAIL: %d child process(es) crashed, hung or failed\n",
               bad_children);
        violations++;
    }
    if (violations > 0) {
        printf("  faults injected (ms from the start):\n");
        print_faults(stdout, fl, nf, sh->t0);
    }
    printf("  %s: %s (seed %" PRIu64 ")\n", name,
           violations ? "FAIL" : "PASS", cfg->seed);
    fflush(stdout);

    dump_log(cfg, name, sh, nrec, fl, nf);
    tot->sections += res.sections;
    tot->overlaps += res.overlaps;
    tot->faults += nf;
    tot->violations += violations;
    tot->failed += violations > 0;

    munmap(sh, size);
    cluster_stop(&cl);
    return violations ? 1 : 0;
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: redlock_torture [--seed N] [--duration S] [--processes P]"
            " [--threads T]\n"
            "                       [--keys K] [--nodes N] [--scenario "
            "A,B,...] [--log DIR]\n"
            "                       [--probes yes|no|only]\n"
            "defaults: random seed (printed), 60 s shared by the scenarios, "
            "4 x 4, 3 keys, 5 nodes\n"
            "scenarios:");
    for (int i = 0; i < NSCEN; i++)
        fprintf(f, " %s", scenarios[i].name);
    fprintf(f, " (N = --nodes)\n");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_scenarios(const char *s, unsigned *mask)
{
    *mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < NSCEN; i++) {
            const char *nm = scenarios[i].name;
            /* "Nnode-mem" also answers to "5node-mem" and the like. */
            if (strcmp(tok, nm) == 0 ||
                (scenarios[i].multi && tok[0] >= '2' && tok[0] <= '9' &&
                 strcmp(tok + 1, nm + 1) == 0)) {
                *mask |= 1u << i;
                found = 1;
            }
        }
        if (!found)
            return -1;
    }
    return *mask ? 0 : -1;
}

int main(int argc, char **argv)
{
    config cfg = {.duration_s = 60, .procs = 4, .threads = 4, .keys = 3,
                  .nodes = 5, .mask = (1u << NSCEN) - 1, .probes = 1};
    int seeded = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (!v) {
            bad = 1;
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            cfg.seed = strtoull(v, &end, 0);
            bad = errno || *end || end == v;
            seeded = 1;
        } else if (strcmp(a, "--duration") == 0) {
            char *end;
            cfg.duration_s = strtod(v, &end);
            bad = *end || end == v || !(cfg.duration_s >= 1) ||
                  cfg.duration_s > 86400;
        } else if (strcmp(a, "--processes") == 0) {
            bad = parse_int(v, 1, MAX_PROCS, &cfg.procs);
        } else if (strcmp(a, "--threads") == 0) {
            bad = parse_int(v, 1, MAX_THREADS, &cfg.threads);
        } else if (strcmp(a, "--keys") == 0) {
            bad = parse_int(v, 1, MAX_KEYS, &cfg.keys);
        } else if (strcmp(a, "--nodes") == 0) {
            bad = parse_int(v, 3, MAX_NODES, &cfg.nodes);
        } else if (strcmp(a, "--scenario") == 0) {
            bad = parse_scenarios(v, &cfg.mask);
        } else if (strcmp(a, "--log") == 0) {
            cfg.logdir = v;
        } else if (strcmp(a, "--probes") == 0) {
            cfg.probes = strcmp(v, "no") == 0     ? 0
                         : strcmp(v, "yes") == 0  ? 1
                         : strcmp(v, "only") == 0 ? 2
                                                  : -1;
            bad = cfg.probes < 0;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "redlock_torture: bad argument: %s%s%s\n", a,
                    v ? " " : "", v ? v : "");
            usage(stderr);
            return 64;
        }
    }
    if (!seeded) {
        uint64_t s = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
        cfg.seed = splitmix(&s) >> 16;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (t_check_selftest(stdout) != 0) {
        printf("redlock_torture: the checker's self-test failed\n");
        return 2;
    }
    printf("redlock_torture: seed %" PRIu64 ", %.0f s, %d processes x %d "
           "threads, %d keys, ttl %d..%d ms, I/O timeout %d ms\n",
           cfg.seed, cfg.duration_s, cfg.procs, cfg.threads, cfg.keys,
           TTL_MIN, TTL_MAX, IO_MS);
    printf("reproduce the fault schedule with: --seed %" PRIu64
           " --duration %.0f --processes %d --threads %d --keys %d --nodes "
           "%d\n",
           cfg.seed, cfg.duration_s, cfg.procs, cfg.threads, cfg.keys,
           cfg.nodes);

    int probes_failed = cfg.probes ? t_probes(stdout) : 0;
    if (cfg.probes == 2) {
        printf("\nredlock_torture: %s: %d probe(s) failed\n",
               probes_failed ? "FAIL" : "PASS", probes_failed);
        return probes_failed ? 1 : 0;
    }

    int weights = 0;
    for (int i = 0; i < NSCEN; i++)
        if (cfg.mask & (1u << i))
            weights += scenarios[i].weight;
    totals tot = {0};
    int rc = 0;
    for (int i = 0; i < NSCEN; i++) {
        if (!(cfg.mask & (1u << i)))
            continue;
        double secs = cfg.duration_s * scenarios[i].weight / weights;
        if (secs < 2)
            secs = 2;
        uint64_t s = cfg.seed + (uint64_t)i;
        int r = run_scenario(&cfg, &scenarios[i], secs, splitmix(&s), &tot);
        if (r > rc)
            rc = r;
    }
    if (probes_failed && rc < 1)
        rc = 1;
    printf("\nredlock_torture: %s: %ld sections, %ld overlaps, %ld faults, "
           "%ld violations in %d failed scenario(s), %d failed probe(s); "
           "seed %" PRIu64 "\n",
           rc ? "FAIL" : "PASS", tot.sections, tot.overlaps, tot.faults,
           tot.violations, tot.failed, probes_failed, cfg.seed);
    return rc;
}
