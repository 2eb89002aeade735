/*
 * The torture test's checker: pure functions over the records of one run.
 * The rules it applies are stated at the top of torture.c; in short:
 *
 *   told(S)      = the earliest of: S's first check that saw held 0 or
 *                  validity 0, the on_lost callback for S, an extend that
 *                  returned NOT_HELD, and valid_until (the end of the
 *                  validity S was last given: t + validity_ms at its last
 *                  check that said held).
 *   overlap      = two sections A, B of one key, A.start <= B.start <
 *                  A.end (a section is [acquire returned, release called]).
 *   explained    = told(A) <= B.start, or told(B) <= A.start.
 *   reported     = not explained, but A or B was told at some time, or its
 *                  release returned NOT_HELD.
 *   undetermined = neither, and a release of the two failed otherwise (IO,
 *                  SERVER) or was a detach: the library could not know.
 *   unreported   = the rest.
 *   silent loss  = NOT_HELD learnt (held 0, the callback, extend, release)
 *                  more than T_SLACK_NS before valid_until: the key was gone
 *                  while the library still promised it.
 *
 *   one holder   = sections of one process with one token (acquire_as,
 *                  adopt): a re-acquire by the token succeeds, and the key
 *                  is deleted by the last release of its handles.  They
 *                  never overlap one another (counted apart), but each may
 *                  overlap a section of another token, judged as above.
 *                  Fences are compared between holders, not within one.
 *   unreplicated = an acquire or extend that returned OK (min_replicas 1)
 *                  while the replica was stopped for the whole call: a
 *                  violation in every scenario.
 *
 * strict (persistent nodes): every overlap must be explained, there must be
 * no silent loss, and fences must strictly increase in order of start.
 * Not strict: only unreported overlaps are violations.
 *
 * The cluster (scenario "cluster": one redis+cluster:// URL, three masters
 * with a replica each, no persistence) is strict, and what it promises
 * (README, "Redis Cluster") decides which faults may cost a lock:
 *
 *   exposed      = a section of key k whose [acq_call, end] meets the
 *                  window of a kill -9 of the master serving k's slot, or
 *                  of a CLUSTER FAILOVER FORCE of it: from 500 ms before
 *                  the kill (the command) to 500 ms after the cluster was
 *                  whole again (the killed node restarted as a replica; the
 *                  old master a replica of the new one).  Replication is
 *                  asynchronous: an acquire, renewal or extend the master
 *                  acknowledged may never reach the replica that takes its
 *                  place (nor may a release's delete or a fence's INCR),
 *                  and a forced failover's old master takes writes until
 *                  it hears of the new one.  Such a key is gone (or older)
 *                  on the new master, where another client can take it,
 *                  and its holder learns it at its next renewal, extend or
 *                  release (README, "Sentinel" and "Redis Cluster": what a
 *                  failover does to a held lock).  That is a node that
 *                  forgot a key, as one restarted without persistence
 *                  does, where only "never told" is a failure.  (Not
 *                  T_F_UNREPLICATED, which is always a violation: there
 *                  min_replicas 1 said OK although no replica could have
 *                  the write.)  So an exposed section is judged as not
 *                  strict: an overlap in which either of the
 *                  two is exposed fails only when unreported, an exposed
 *                  section's NOT_HELD before its validity ran out is no
 *                  violation (counted), and neither is a fence that went
 *                  back across an exposed section (a lost INCR).
 *   outage       = a section of key k that met a time k's slot could not be
 *                  served: a killed master's slots until its replica took
 *                  over (every slot, when the cluster requires full
 *                  coverage: it answers CLUSTERDOWN everywhere), or the
 *                  pause of a manual CLUSTER FAILOVER (writes wait until the
 *                  replica caught up: nothing acknowledged is lost, so
 *                  overlaps stay strict).  Renewals fail meanwhile, and a
 *                  kept-alive lock may run out of validity: allowed.
 *   kept lost    = (T_KEEP_LOSSES) a kept-alive section neither exposed nor
 *                  in an outage that was told of a loss (held 0, validity
 *                  0, the callback, extend or release NOT_HELD): a
 *                  violation.  Slot migrations (ASK, then MOVED), CLIENT
 *                  KILL and SCRIPT FLUSH must never cost a lock, nor a
 *                  kill or failover of another master than the key's when
 *                  the cluster does not require full coverage.
 *
 * A manual failover (no FORCE) is thus no exposure: the replica takes over
 * only once it has every write the master acknowledged, and the master
 * redirects what it held back.  A migration is none either: MIGRATE moves
 * a key with its ttl, atomically, and the slot keeps its master's replica.
 */
#include "torture.h"

#include "redlock.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int64_t told_at(const t_rec *r)
{
    return min64(min64(r->lost_at, r->cb_at),
                 min64(r->ext_lost_at, r->valid_until));
}

/* The library told the holder, one way or another, at some time. */
static int reported(const t_rec *r)
{
    return r->lost_at != T_NEVER || r->cb_at != T_NEVER ||
           r->ext_lost_at != T_NEVER || r->release_st == REDLOCK_NOT_HELD;
}

/* A release that could not say (IO, SERVER) or did not happen (detach). */
static int undeterminable(const t_rec *r)
{
    return r->release_st != REDLOCK_OK && r->release_st != REDLOCK_NOT_HELD;
}

/* The earliest NOT_HELD verdict S got, or T_NEVER. */
static int64_t not_held_at(const t_rec *r)
{
    int64_t t = min64(r->cb_at, r->ext_lost_at);
    if (r->flags & T_F_LOST_HELD0)
        t = min64(t, r->lost_at);
    if (r->release_st == REDLOCK_NOT_HELD)
        t = min64(t, r->rel_ret);
    return t;
}

static int cmp_rec(const void *pa, const void *pb)
{
    const t_rec *a = *(const t_rec *const *)pa, *b = *(const t_rec *const *)pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return 0;
}

static double rel_ms(int64_t t, int64_t t0)
{
    if (t == T_NEVER)
        return -1.0;
    return (double)(t - t0) / 1e6;
}

static const char *st_name(int st)
{
    switch (st) {
    case REDLOCK_OK: return "OK";
    case REDLOCK_BUSY: return "BUSY";
    case REDLOCK_NOT_HELD: return "NOT_HELD";
    case REDLOCK_IO: return "IO";
    case REDLOCK_SERVER: return "SERVER";
    case REDLOCK_AUTH: return "AUTH";
    case REDLOCK_INVALID: return "INVALID";
    case REDLOCK_NOMEM: return "NOMEM";
    case T_DETACHED: return "detached";
    default: return "?";
    }
}

static void describe(FILE *out, const char *label, const t_rec *r, int64_t t0)
{
    if (!out)
        return;
    fprintf(out,
            "    %s: key %d proc %d thread %d token %s fence %" PRId64
            " ttl %" PRId64 "%s%s%s%s\n"
            "       acquire called %.3f, returned (start) %.3f, last check "
            "held %.3f valid until %.3f, commits %d\n"
            "       told: check %.3f%s, callback %.3f, extend NOT_HELD %.3f;"
            " release called (end) %.3f returned %.3f: %s\n",
            label, r->key, r->proc, r->thread, r->token, r->fence, r->ttl_ms,
            r->flags & T_F_KEEPALIVE ? " keepalive" : "",
            r->flags & T_F_EXTENDED ? " extended" : "",
            r->flags & T_F_DETACHED ? " detached" : "",
            r->flags & T_F_KILLED ? " (holder killed: end = the kill)"
            : r->flags & T_F_EXPOSED ? " (exposed: its master was killed "
                                       "or failed over by force)"
            : r->flags & T_F_OUTAGE ? " (in an outage of its slot)"
                                    : "",
            rel_ms(r->acq_call, t0),
            rel_ms(r->start, t0), rel_ms(r->last_ok, t0),
            rel_ms(r->valid_until, t0), r->commits, rel_ms(r->lost_at, t0),
            r->lost_at == T_NEVER             ? ""
            : (r->flags & T_F_LOST_HELD0) ? " (held 0)"
                                          : " (validity 0)",
            rel_ms(r->cb_at, t0), rel_ms(r->ext_lost_at, t0),
            rel_ms(r->end, t0), rel_ms(r->rel_ret, t0),
            st_name(r->release_st));
}

void t_check(const t_rec *recs, long n, int strict, t_result *res, FILE *out,
             int64_t t0, int max_details)
{
    memset(res, 0, sizeof *res);
    const t_rec **v = malloc(sizeof *v * (size_t)(n > 0 ? n : 1));
    if (!v) {
        if (out)
            fprintf(out, "torture: out of memory in the checker\n");
        res->violations++;
        return;
    }
    long m = 0;
    for (long i = 0; i < n; i++)
        if (atomic_load(&recs[i].done))
            v[m++] = &recs[i];
    qsort(v, (size_t)m, sizeof *v, cmp_rec);

    long shown_overlap = 0, shown_silent = 0, shown_fence = 0, shown_lost = 0;
    for (long i = 0; i < m; i++) {
        const t_rec *a = v[i];
        res->sections++;
        res->commits += a->commits;
        res->keepalive += (a->flags & T_F_KEEPALIVE) != 0;
        res->extended += (a->flags & T_F_EXTENDED) != 0;
        if (a->release_st == T_DETACHED)
            res->detached++;
        else if (a->release_st >= 0 && a->release_st < 8)
            res->rel[a->release_st]++;
        res->callbacks += a->cb_at != T_NEVER;
        if (a->lost_at != T_NEVER || a->cb_at != T_NEVER ||
            a->ext_lost_at != T_NEVER) {
            res->told++;
            if (a->ext_lost_at != T_NEVER && a->ext_lost_at <= a->lost_at)
                res->told_extend++;
            else if (a->flags & T_F_LOST_HELD0 || a->cb_at < a->lost_at)
                res->told_held0++;
            else
                res->told_validity++;
        }

        int a_exp = (a->flags & T_F_EXPOSED) != 0;
        if (a_exp) {
            res->exposed++;
            res->exposed_told += reported(a);
        } else if (a->flags & T_F_OUTAGE) {
            res->outage++;
            res->outage_lost += (a->flags & T_F_KEEPALIVE) && reported(a);
        } else if ((a->flags & T_F_KEEPALIVE) && reported(a)) {
            res->kept_lost++;
            if (strict & T_KEEP_LOSSES) {
                res->violations++;
                if (out && shown_lost++ < max_details) {
                    fprintf(out, "  LOST: a kept-alive lock was lost with no "
                                 "kill or failover of its master while it "
                                 "ran\n");
                    describe(out, "section", a, t0);
                }
            }
        }

        if (a->flags & T_F_UNREPLICATED) {
            res->unreplicated++;
            res->violations++;
            if (out && shown_silent++ < max_details) {
                fprintf(out, "  UNREPLICATED: OK (min_replicas 1) while the "
                             "replica was stopped for the whole call\n");
                describe(out, "section", a, t0);
            }
        }

        /* Silent loss: NOT_HELD while the promised validity still ran. */
        int64_t nh = not_held_at(a);
        if (nh != T_NEVER && nh + T_SLACK_NS < a->valid_until) {
            res->silent++;
            if ((strict & T_STRICT) && !a_exp) {
                res->violations++;
                if (out && shown_silent++ < max_details) {
                    fprintf(out,
                            "  SILENT LOSS: NOT_HELD at %.3f ms, %.3f ms "
                            "before the validity last given ran out\n",
                            rel_ms(nh, t0), (double)(a->valid_until - nh) / 1e6);
                    describe(out, "section", a, t0);
                }
            }
        }

        /* Fences: strictly increasing in order of start, per key, between
         * the sections that have one (clients without fencing may hold the
         * key in between). */
        long nx = i + 1;
        while (nx < m && v[nx]->key == a->key && v[nx]->fence <= 0)
            nx++;
        if (nx < m && v[nx]->key == a->key && a->fence > 0 &&
            !(a->proc == v[nx]->proc && strcmp(a->token, v[nx]->token) == 0)) {
            /* (Not between handles of one token: one holder, whose
             * re-acquires may return in another order than they ran.) */
            res->fence_pairs++;
            if (v[nx]->fence <= a->fence) {
                res->fence_back++;
                if ((strict & T_STRICT) && !a_exp &&
                    !(v[nx]->flags & T_F_EXPOSED)) {
                    res->violations++;
                    if (out && shown_fence++ < max_details) {
                        fprintf(out, "  FENCE WENT BACK: %" PRId64
                                     " then %" PRId64 "\n",
                                a->fence, v[nx]->fence);
                        describe(out, "earlier", a, t0);
                        describe(out, "later", v[nx], t0);
                    }
                }
            }
        }

        /* Overlaps with sections that started while a ran. */
        for (long j = i + 1; j < m && v[j]->key == a->key &&
                             v[j]->start < a->end;
             j++) {
            const t_rec *b = v[j];
            if (a->proc == b->proc && strcmp(a->token, b->token) == 0) {
                res->same_token++; /* one holder */
                continue;
            }
            res->overlaps++;
            const char *kind;
            int bad;
            /* An exposed section's key may have been lost by its master:
             * judged as not strict (check.c's top comment). */
            int pair_strict = (strict & T_STRICT) && !a_exp &&
                              !(b->flags & T_F_EXPOSED);
            if (!pair_strict && (strict & T_STRICT))
                res->exposed_overlaps++;
            if (told_at(a) <= b->start || told_at(b) <= a->start) {
                res->explained++;
                continue;
            } else if (reported(a) || reported(b)) {
                res->reported++;
                kind = "reported later";
                bad = pair_strict;
            } else if (undeterminable(a) || undeterminable(b)) {
                res->undetermined++;
                kind = "undetermined (a release failed or was a detach)";
                bad = pair_strict;
            } else {
                res->unreported++;
                kind = "NEVER REPORTED";
                bad = 1;
            }
            if (bad) {
                res->violations++;
                if (out && shown_overlap++ < max_details) {
                    fprintf(out,
                            "  OVERLAP, %s: key %d, %.3f ms in common; the "
                            "first was told at %.3f, the second began at "
                            "%.3f\n",
                            kind, a->key,
                            (double)(min64(a->end, b->end) - b->start) / 1e6,
                            rel_ms(told_at(a), t0), rel_ms(b->start, t0));
                    describe(out, "first ", a, t0);
                    describe(out, "second", b, t0);
                }
            }
        }
    }
    free(v);
}

void t_expose(t_rec *recs, long n, const t_window *w, int nw)
{
    for (long i = 0; i < n; i++) {
        t_rec *r = &recs[i];
        if (!atomic_load(&r->done) || r->key < 0 || r->key >= 32)
            continue;
        for (int j = 0; j < nw; j++)
            if ((w[j].keys >> r->key & 1u) && r->acq_call <= w[j].to &&
                r->end >= w[j].from)
                r->flags |= w[j].kind == T_W_EXPOSED ? T_F_EXPOSED
                                                      : T_F_OUTAGE;
    }
}

/* ---- self-test ----------------------------------------------------------- */

#define MS ((int64_t)1000000)

static t_rec mk(int key, int64_t start_ms, int64_t end_ms, int64_t valid_ms,
                int st, int64_t fence)
{
    t_rec r;
    memset(&r, 0, sizeof r);
    r.key = key;
    r.acq_call = start_ms * MS - MS;
    r.start = start_ms * MS;
    r.end = end_ms * MS;
    r.rel_ret = end_ms * MS + MS;
    r.last_ok = end_ms * MS;
    r.valid_until = valid_ms * MS;
    r.lost_at = r.cb_at = r.ext_lost_at = T_NEVER;
    r.release_st = st;
    r.fence = fence;
    r.commits = 1;
    snprintf(r.token, sizeof r.token, "t%d-%" PRId64, key, start_ms);
    atomic_init(&r.done, 1);
    return r;
}

static int expect(FILE *out, const char *what, long got, long want)
{
    if (got == want)
        return 0;
    if (out)
        fprintf(out, "torture: checker self-test: %s: %ld, expected %ld\n",
                what, got, want);
    return 1;
}

int t_check_selftest(FILE *out)
{
    int bad = 0;
    t_result r;
    t_rec s[8];
    memset(s, 0, sizeof s);

    /* Back to back, fences rising: nothing to say. */
    s[0] = mk(0, 100, 200, 300, REDLOCK_OK, 1);
    s[1] = mk(0, 200, 300, 400, REDLOCK_OK, 2);
    s[2] = mk(1, 150, 250, 400, REDLOCK_OK, 0); /* another key */
    t_check(s, 3, 1, &r, NULL, 0, 0);
    bad |= expect(out, "clean: sections", r.sections, 3);
    bad |= expect(out, "clean: overlaps", r.overlaps, 0);
    bad |= expect(out, "clean: fence pairs", r.fence_pairs, 1);
    bad |= expect(out, "clean: violations", r.violations, 0);

    /* Overlap, the first told by validity 0 before the second began. */
    s[0] = mk(0, 100, 300, 250, REDLOCK_OK, 1);
    s[0].lost_at = 260 * MS;
    s[1] = mk(0, 255, 400, 500, REDLOCK_OK, 2);
    t_check(s, 2, 1, &r, NULL, 0, 0);
    bad |= expect(out, "explained: overlaps", r.overlaps, 1);
    bad |= expect(out, "explained: explained", r.explained, 1);
    bad |= expect(out, "explained: violations", r.violations, 0);

    /* Overlap, the first still promised validity: strict fails. */
    s[0] = mk(0, 100, 300, 350, REDLOCK_NOT_HELD, 1);
    s[1] = mk(0, 255, 400, 500, REDLOCK_OK, 2);
    t_check(s, 2, 1, &r, NULL, 0, 0);
    bad |= expect(out, "reported/strict: reported", r.reported, 1);
    bad |= expect(out, "reported/strict: silent", r.silent, 1);
    bad |= expect(out, "reported/strict: violations", r.violations, 2);
    t_check(s, 2, 0, &r, NULL, 0, 0);
    bad |= expect(out, "reported/lax: violations", r.violations, 0);

    /* Never told, release OK: fails either way. */
    s[0] = mk(0, 100, 300, 350, REDLOCK_OK, 0);
    s[1] = mk(0, 255, 400, 500, REDLOCK_OK, 0);
    t_check(s, 2, 0, &r, NULL, 0, 0);
    bad |= expect(out, "unreported: unreported", r.unreported, 1);
    bad |= expect(out, "unreported: violations", r.violations, 1);

    /* A release that failed: undetermined, allowed when not strict. */
    s[0].release_st = REDLOCK_IO;
    t_check(s, 2, 0, &r, NULL, 0, 0);
    bad |= expect(out, "undetermined: count", r.undetermined, 1);
    bad |= expect(out, "undetermined: violations", r.violations, 0);

    /* Fence going back, and equal. */
    s[0] = mk(0, 100, 200, 300, REDLOCK_OK, 5);
    s[1] = mk(0, 210, 300, 400, REDLOCK_OK, 3);
    s[2] = mk(0, 310, 400, 500, REDLOCK_OK, 3);
    t_check(s, 3, 1, &r, NULL, 0, 0);
    bad |= expect(out, "fence: back", r.fence_back, 2);
    bad |= expect(out, "fence: violations", r.violations, 2);
    t_check(s, 3, 0, &r, NULL, 0, 0);
    bad |= expect(out, "fence lax: violations", r.violations, 0);

    /* A section without a fence (a client without fencing) in between:
     * the fenced ones around it are still compared. */
    s[0] = mk(0, 100, 200, 300, REDLOCK_OK, 5);
    s[1] = mk(0, 210, 300, 400, REDLOCK_OK, 0);
    s[2] = mk(0, 310, 400, 500, REDLOCK_OK, 4);
    t_check(s, 3, 1, &r, NULL, 0, 0);
    bad |= expect(out, "fence over a gap: pairs", r.fence_pairs, 1);
    bad |= expect(out, "fence over a gap: back", r.fence_back, 1);

    /* The watchdog said lost (held 0) while validity ran: silent loss. */
    s[0] = mk(0, 100, 200, 400, REDLOCK_NOT_HELD, 1);
    s[0].lost_at = 190 * MS;
    s[0].flags |= T_F_LOST_HELD0;
    s[0].rel_ret = 500 * MS; /* the release alone would be late enough */
    t_check(s, 1, 1, &r, NULL, 0, 0);
    bad |= expect(out, "silent: silent", r.silent, 1);
    /* The same at validity's end: no silent loss. */
    s[0].lost_at = 400 * MS;
    t_check(s, 1, 1, &r, NULL, 0, 0);
    bad |= expect(out, "silent at end: silent", r.silent, 0);

    /* Three sections at once: three pairs. */
    s[0] = mk(0, 100, 400, 500, REDLOCK_OK, 0);
    s[1] = mk(0, 150, 400, 500, REDLOCK_OK, 0);
    s[2] = mk(0, 200, 400, 500, REDLOCK_OK, 0);
    t_check(s, 3, 0, &r, NULL, 0, 0);
    bad |= expect(out, "three: overlaps", r.overlaps, 3);

    /* One process, one token: one holder, whose handles may overlap; but
     * another token overlapping one of them is an overlap. */
    s[0] = mk(0, 100, 400, 500, REDLOCK_OK, 0);
    s[1] = mk(0, 150, 300, 500, REDLOCK_OK, 0);
    snprintf(s[1].token, sizeof s[1].token, "%s", s[0].token);
    s[2] = mk(0, 350, 450, 600, REDLOCK_OK, 0);
    t_check(s, 3, 0, &r, NULL, 0, 0);
    bad |= expect(out, "same token: same", r.same_token, 1);
    bad |= expect(out, "same token: overlaps", r.overlaps, 1);
    bad |= expect(out, "same token: unreported", r.unreported, 1);
    s[1].proc = 1; /* another process: another holder */
    t_check(s, 3, 0, &r, NULL, 0, 0);
    bad |= expect(out, "same token, two processes: overlaps", r.overlaps, 2);

    /* An acquire that no replica can have acknowledged. */
    s[0] = mk(0, 100, 200, 300, REDLOCK_OK, 1);
    s[0].flags |= T_F_UNREPLICATED;
    t_check(s, 1, 0, &r, NULL, 0, 0);
    bad |= expect(out, "unreplicated: count", r.unreplicated, 1);
    bad |= expect(out, "unreplicated: violations", r.violations, 1);

    /* The cluster: windows flag the sections of their keys that met them. */
    t_window win[2] = {{300 * MS, 400 * MS, 1u << 0, T_W_EXPOSED},
                       {300 * MS, 400 * MS, 1u << 1, T_W_OUTAGE}};
    s[0] = mk(0, 100, 350, 500, REDLOCK_OK, 0); /* key 0, meets it */
    s[1] = mk(0, 401, 500, 600, REDLOCK_OK, 0); /* acquire called at 400 */
    s[2] = mk(0, 402, 500, 600, REDLOCK_OK, 0); /* called after: no */
    s[3] = mk(1, 100, 300, 500, REDLOCK_OK, 0); /* key 1, ends at from */
    s[4] = mk(2, 100, 350, 500, REDLOCK_OK, 0); /* key 2: no window */
    t_expose(s, 5, win, 2);
    bad |= expect(out, "expose: met", (s[0].flags & T_F_EXPOSED) != 0, 1);
    bad |= expect(out, "expose: called at the end", (s[1].flags & T_F_EXPOSED) != 0,
                  1);
    bad |= expect(out, "expose: after", s[2].flags & (T_F_EXPOSED | T_F_OUTAGE),
                  0);
    bad |= expect(out, "expose: outage", s[3].flags, T_F_OUTAGE);
    bad |= expect(out, "expose: other key", s[4].flags, 0);

    /* An exposed holder reported later (the next renewal found the key
     * gone after another took it on the new master): no violation, even
     * strict; never reported: a violation.  The second one not exposed. */
    s[0] = mk(0, 100, 300, 350, REDLOCK_NOT_HELD, 5);
    s[0].flags |= T_F_EXPOSED | T_F_KEEPALIVE;
    s[0].cb_at = 280 * MS;
    s[1] = mk(0, 255, 400, 500, REDLOCK_OK, 5); /* the counter went back */
    t_check(s, 2, T_STRICT | T_KEEP_LOSSES, &r, NULL, 0, 0);
    bad |= expect(out, "exposed: reported", r.reported, 1);
    bad |= expect(out, "exposed: silent", r.silent, 1);
    bad |= expect(out, "exposed: fence back", r.fence_back, 1);
    bad |= expect(out, "exposed: exposed overlaps", r.exposed_overlaps, 1);
    bad |= expect(out, "exposed: told", r.exposed_told, 1);
    bad |= expect(out, "exposed: violations", r.violations, 0);
    s[0].cb_at = T_NEVER;
    s[0].release_st = REDLOCK_OK;
    t_check(s, 2, T_STRICT | T_KEEP_LOSSES, &r, NULL, 0, 0);
    bad |= expect(out, "exposed, never told: unreported", r.unreported, 1);
    bad |= expect(out, "exposed, never told: violations", r.violations, 1);
    /* The same without the flag: strict fails on all three. */
    s[0].flags &= ~T_F_EXPOSED;
    s[0].cb_at = 280 * MS;
    s[0].release_st = REDLOCK_NOT_HELD;
    t_check(s, 2, T_STRICT, &r, NULL, 0, 0);
    bad |= expect(out, "not exposed: violations", r.violations, 3);
    /* ... and with T_KEEP_LOSSES, the kept-alive loss too. */
    t_check(s, 2, T_STRICT | T_KEEP_LOSSES, &r, NULL, 0, 0);
    bad |= expect(out, "not exposed, kept lost: kept_lost", r.kept_lost, 1);
    bad |= expect(out, "not exposed, kept lost: violations", r.violations, 4);

    /* A kept-alive lock that ran out of validity (renewals failed) with no
     * overlap: a violation with T_KEEP_LOSSES, unless in an outage. */
    s[0] = mk(0, 100, 300, 250, REDLOCK_NOT_HELD, 0);
    s[0].flags |= T_F_KEEPALIVE;
    s[0].lost_at = 251 * MS;
    t_check(s, 1, T_STRICT | T_KEEP_LOSSES, &r, NULL, 0, 0);
    bad |= expect(out, "kept lost: violations", r.violations, 1);
    t_check(s, 1, T_STRICT, &r, NULL, 0, 0);
    bad |= expect(out, "kept lost, not asked: violations", r.violations, 0);
    s[0].flags |= T_F_OUTAGE;
    t_check(s, 1, T_STRICT | T_KEEP_LOSSES, &r, NULL, 0, 0);
    bad |= expect(out, "kept lost in an outage: outage_lost", r.outage_lost, 1);
    bad |= expect(out, "kept lost in an outage: violations", r.violations, 0);
    /* In an outage, an overlap is still strict. */
    s[1] = mk(0, 240, 400, 500, REDLOCK_OK, 0);
    t_check(s, 2, T_STRICT | T_KEEP_LOSSES, &r, NULL, 0, 0);
    bad |= expect(out, "outage overlap: violations", r.violations, 1);

    /* Incomplete records are skipped. */
    atomic_store(&s[2].done, 0);
    t_check(s, 3, 0, &r, NULL, 0, 0);
    bad |= expect(out, "incomplete: sections", r.sections, 2);
    return bad;
}
