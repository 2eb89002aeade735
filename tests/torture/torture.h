/*
 * The torture test's shared definitions: one critical section's record, as
 * the worker threads write it, and the checker that judges a run's records
 * (check.c, pure: it is self-tested on made-up records before every run).
 * The rules are explained at the top of torture.c.
 */
#ifndef REDLOCK_TORTURE_H
#define REDLOCK_TORTURE_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

/* "Never": a time that did not happen. */
#define T_NEVER INT64_MAX
/* Slack for comparing a sampled validity end (t + validity, where the
 * library counts validity in whole ms) with an event: 2 ms. */
#define T_SLACK_NS ((int64_t)2000000)

/* How a section ended (rec.release_st): a redlock_status, or this. */
#define T_DETACHED 100

enum {
    T_F_KEEPALIVE = 1, /* handed to the watchdog */
    T_F_EXTENDED = 2,  /* redlock_extend() was called at least once */
    T_F_DETACHED = 4,  /* ended with redlock_detach(), not release */
    T_F_LOST_HELD0 = 8, /* lost_at: held() was 0, not just validity 0 */
    T_F_SHARED = 16,    /* redlock_acquire_as() with a token the threads of
                           one process share for the key */
    T_F_ADOPTED = 32,   /* redlock_adopt() of that token, held by another
                           thread */
    T_F_HERD = 64,      /* one of the herd's thousands of kept-alive locks */
    T_F_UNREPLICATED = 128, /* acquired or extended (OK, min_replicas 1)
                               while the replica was stopped for the whole
                               call: no replica can have acknowledged it */
    T_F_KILLED = 256,       /* the holder's process was killed (SIGKILL)
                               inside: end = the kill, the lock left to
                               expire (recorded as a detach) */
    T_F_EXPOSED = 512,      /* cluster: its key's master was killed or
                               failed over with FORCE while it ran (set by
                               t_expose): its key may be lost, see check.c */
    T_F_OUTAGE = 1024       /* cluster: its key's slot could not be served
                               for a while as it ran (a killed master with
                               full coverage required, a manual failover's
                               pause): it may run out of validity */
};

/* t_check's mode bits (strict is bit 0, as it always was). */
#define T_STRICT 1
#define T_KEEP_LOSSES 2 /* a kept-alive section neither exposed nor in an
                           outage must never be lost (the cluster: a
                           migration keeps every lock) */

/* A time when a failover or a kill could take keys from their master
 * (T_W_EXPOSED), or when their slot could not be served (T_W_OUTAGE): keys
 * is a mask of key numbers (bit k: key k, k < 32).  to = T_NEVER: still
 * lasting at the end. */
enum { T_W_EXPOSED = 1, T_W_OUTAGE = 2 };
typedef struct t_window {
    int64_t from, to;
    uint32_t keys;
    int32_t kind;
} t_window;

/* Keys of the herd are numbered from here (the plain ones from 0). */
#define T_HERD_KEY0 1000

/* One critical section.  Times are CLOCK_MONOTONIC nanoseconds (one clock
 * for every process on the machine). */
typedef struct t_rec {
    int64_t start;       /* redlock_acquire() returned OK */
    int64_t end;         /* redlock_release()/detach() called */
    int64_t rel_ret;     /* ... and returned */
    int64_t acq_call;    /* redlock_acquire() called */
    int64_t valid_until; /* t + validity_ms(t) of the last check that said
                            held (the right-after-acquire one included) */
    int64_t last_ok;     /* the time of that check */
    int64_t lost_at;     /* first check that saw held 0 or validity 0 */
    int64_t cb_at;       /* on_lost callback ran */
    int64_t ext_lost_at; /* redlock_extend() returned NOT_HELD */
    int64_t fence;       /* redlock_fence() (0 without fencing) */
    int64_t ttl_ms;
    int32_t key;
    int32_t proc, thread;
    int32_t flags;       /* T_F_* */
    int32_t release_st;  /* redlock_status of the release, or T_DETACHED */
    int32_t commits;     /* checks that said held, each followed by a write */
    char token[40];
    _Atomic int done;    /* the record is complete */
} t_rec;

/* What the checker found. */
typedef struct t_result {
    long sections, commits, keepalive, extended, detached;
    long told;            /* sections told of a loss while inside */
    long told_validity;   /* ... by validity 0 with held 1 */
    long told_held0;      /* ... by held 0 (the watchdog found it lost) */
    long told_extend;     /* ... by redlock_extend() NOT_HELD */
    long callbacks;
    long rel[8];          /* release statuses */
    long overlaps;        /* pairs of sections of one key that intersect */
    long explained;       /* one of the two was told before the other began */
    long reported;        /* not explained, but told (or release NOT_HELD) */
    long undetermined;    /* neither: and a release failed or was skipped */
    long unreported;      /* neither was ever told */
    long silent;          /* NOT_HELD before the validity it had been given */
    long fence_pairs;     /* successive fenced sections compared */
    long fence_back;      /* ... whose fence did not increase */
    long same_token;      /* pairs of one process and token that intersect:
                             one holder, no overlap */
    long unreplicated;    /* T_F_UNREPLICATED sections */
    /* The cluster (t_expose): */
    long exposed;         /* sections flagged T_F_EXPOSED */
    long exposed_told;    /* ... told of a loss (or release NOT_HELD) */
    long exposed_overlaps;/* overlaps with an exposed section: judged as
                             not strict (reported is enough) */
    long outage;          /* sections flagged T_F_OUTAGE (not exposed) */
    long outage_lost;     /* ... kept alive and lost */
    long kept_lost;       /* kept alive, neither, and lost: with
                             T_KEEP_LOSSES a violation */
    long violations;      /* what fails the scenario */
} t_result;

/*
 * Judge n records (not modified; complete ones only).  strict: a mask of
 * T_STRICT and T_KEEP_LOSSES.  Sections of one
 * process with one token are one holder (a re-acquire by the token
 * succeeds, and the key is deleted by the last release of its handles):
 * they never overlap each other, but each of them may overlap a section of
 * another token.  A section flagged T_F_UNREPLICATED is always a
 * violation.  T_STRICT: the
 * nodes keep their keys across faults (AOF appendfsync always), so every
 * overlap must be explained, no loss may come before its validity ran out,
 * and fences (when non-zero) must strictly increase.  Not strict: overlaps
 * are allowed when the library reported them (told the holder, or its
 * release returned NOT_HELD).  A section flagged T_F_EXPOSED (and any
 * overlap or fence pair with one) is judged as not strict whatever the
 * mode.  T_KEEP_LOSSES: a kept-alive section that is neither exposed nor
 * in an outage and was told of a loss is a violation.  Violations are
 * described on out (at most max_details of each kind), with times
 * relative to t0.
 */
void t_check(const t_rec *recs, long n, int strict, t_result *res, FILE *out,
             int64_t t0, int max_details);

/*
 * Flag the sections a window touched (the cluster): a section of key k
 * whose [acq_call, end] meets [from, to] of a window with bit k gets
 * T_F_EXPOSED or T_F_OUTAGE by the window's kind.  The windows come with
 * their margins already applied.  Run before t_check.
 */
void t_expose(t_rec *recs, long n, const t_window *w, int nw);

/* The checker's own test on made-up records: 0 when it classifies them as
 * it should.  Describes what went wrong on out. */
int t_check_selftest(FILE *out);

/* The deterministic probes (probes.c): how many failed. */
int t_probes(FILE *out);

#endif
