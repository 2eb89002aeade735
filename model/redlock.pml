/*
 * redlock.pml -- a Promela model of libredlock's lock protocol (Redlock:
 * NN independent Redis nodes, quorum NN/2+1; NN=1 is the single node).
 * Checked with spin: see model/README.md and scripts/model.sh.
 *
 * WHAT IS MODELLED.  One key.  Two clients:
 *   client A  threads A1, A2 and its watchdog WD, all using ONE caller
 *             token TA (redlock_acquire_as / redlock_adopt): the identity
 *             (key, TA).  A1: acquire_as with waiting (a waiter's second
 *             attempt after BUSY, or a second call after an I/O failure),
 *             keepalive, release.  A2: acquire_as (no wait) or adopt of
 *             the same identity, concurrently, then release.  WD: the
 *             watchdog's rounds (renew A1's handle) and, on the same
 *             connections, the ghost deletes queued for each node.
 *   client B  plain redlock_acquire with a fresh random token per attempt
 *             (TB1, then TB2 as a waiter), then release.
 * Every request goes on its own connection (one slot per thread and node);
 * requests of different slots reach a node in any order, requests on one
 * slot in order (the ghost delete before the command it was queued with).
 *
 * ABSTRACTIONS AND ASSUMPTIONS
 *  - Time.  No clock.  Each handle h has a bit valid[h]: "validity left"
 *    (set when its attempt starts: validity is measured from the send).
 *    Process Time may clear it at any moment.  Each node's key has a set
 *    prot[n] of the handles whose validity its ttl covers: a request of
 *    h that set or raised the ttl adds h (the ttl then ends after h's
 *    validity, which is measured from before the send: ttl - drift).
 *    The key may expire (Time) only when no handle in prot[n] still has
 *    validity.  One ttl for every operation, so a PEXPIRE never shortens
 *    a key here: shortening extends (and adopt's pttl-based renewals)
 *    are NOT modelled.  A renewal whose reply comes after the previous
 *    validity ran out is treated as failed (no "revived" handle).  A new
 *    attempt of h first removes h from every prot[n] (old keys do not
 *    cover the new validity).
 *  - Faults.  A request may time out (at most FAULTS times in a run):
 *    the client counts the node failed; the request becomes an orphan
 *    that may be applied at any later moment (process Net), ghost delete
 *    first, or never.  ASSUMPTION (the C code resets an abandoned
 *    connection with SO_LINGER 0): an orphan is applied before any
 *    request the same client sends later to that node, or never; so
 *    every send first drops that client's orphans on the node (resolve).
 *    A node that is down is a node whose requests all time out.  Node
 *    crash/restart without persistence is OUT OF SCOPE (a restarted
 *    empty node breaks Redlock's safety without fsync/delayed restart).
 *  - Client B keeps no ghosts and does no undo: its tokens are fresh per
 *    attempt and nobody holds a failed attempt's token, so deleting such
 *    a key is the same as its expiry, which Time already allows at once
 *    (valid[B] is cleared when the attempt fails).
 *  - Only A's watchdog carries ghosts (queue_ghosts runs on any exchange;
 *    WD stands for "some other exchange of client A on that node").
 *  - Replies carry no corruption; a waiter is "listening" from its first
 *    BUSY to the end of its call; the handoff value may expire any time.
 *
 * INVARIANTS (process Mon, checked in every reachable state)
 *  S1  no handle of client A (token TA) and the handle of client B both
 *      believe they hold the key with validity left.
 *  S2  a handle that believes it holds the key with validity left has its
 *      token on a quorum of nodes.  Window: a handle stops "believing" at
 *      the start of its release (held bit cleared before any delete is
 *      sent), and a lost renewal (NOT_HELD) clears its validity.
 *
 * SWITCHES (spin -D...).  Default: the new design (D1-D4 of the brief plus
 * the identity gate below).  Each OLD_/BRIEF_ switch restores one rule:
 *   OLD_REACQUIRE  today's acquire: SET NX refuses our own token ("no"),
 *                  and the undo deletes on every node that answered.
 *   OLD_GHOST      today's ghosts: always created, returned to the list
 *                  after a broken connection, forgotten only when still
 *                  pending and only after a successful acquire_as; no
 *                  wait for ghosts in flight.
 *   OLD_RELEASE    today's release: always deletes, siblings or not (D3).
 *   BRIEF_GATE     the brief's D2/D3/D4 literally: the undo deletes every
 *                  "placed" node even while another user of the identity
 *                  exists, release deletes unless another live HANDLE
 *                  exists (an attempt in progress does not count), only
 *                  ghost deletes are waited for, and a ghost whose
 *                  connection broke is returned to the list even while
 *                  the identity is in use.
 *   PER_NODE_SKIP  a claim that gives up (a delete of the identity still
 *                  in flight at its deadline) skips only those nodes and
 *                  sends to the others, counting the skipped ones failed
 *                  (the first draft).  The C code (redlock__handle_claim)
 *                  sends nothing at all then: the default here.
 *   NO_RENEW_GATE  with PER_NODE_SKIP: without rule renew_gate (found by
 *                  the model: with per-node skipping a renewal must not
 *                  count a node with a delete in flight; with the whole
 *                  claim failing, no renewal can meet one).
 *   NN=1|3, FAULTS=k, WDROUNDS=k, BATT=0|1|2 (B's attempts; 0: no B),
 *   A2MODE=0|1|2 (A2: acquire_as or adopt / acquire_as only / adopt
 *   only), A2_AFTER_HOLD (A2 starts once A1 holds), ONLY_S1 (check S1
 *   alone: the counterexample then ends with two holders).
 *   Trail printouts: thread 0=A1 1=A2 2=WD 3=B; op 1=SETNX 2=acquire_as
 *   3=waiter acquire 4=release 5=extend 6=inspect 7=nop; token 2=TA
 *   3=TB1 4=TB2, value 0=free 1=handoff; reply 0=no 1=placed 2=already
 *   ours 3=yes.
 *
 * THE IDENTITY GATE (default; rule names in brackets):
 *   users = registered users of (key, TA) in client A: live handles plus
 *   calls in progress [identity_register].  A token-checked delete of the
 *   identity (undo, release, ghost) is started only when no OTHER user is
 *   registered [undo_acquire, release_last, ghost_add, ghost_return];
 *   every such delete is "in flight" on its node until its exchange
 *   settles (reply or abandon), and an attempt/adopt first cancels the
 *   pending ghosts and waits for in-flight deletes on each node; if one
 *   is still in flight when it gives up, it sends nothing [identity_gate].
 *   (The C code has a pending ghost sent and answered rather than
 *   cancelled, which under the delivery assumption above is the same.)
 */

#ifndef NN
#define NN 3
#endif
#define Q (NN / 2 + 1)
#ifndef FAULTS
#define FAULTS 1
#endif
#ifndef WDROUNDS
#define WDROUNDS 2
#endif
#ifndef BATT
#define BATT 2
#endif
#ifndef A2MODE
#define A2MODE 0
#endif
#ifdef OLD_GHOST
#define NEW_GHOST 0
#else
#define NEW_GHOST 1
#endif

/* key values */
#define FREE 0
#define HANDOFF 1 /* "redlock:handoff" */
#define TA 2      /* client A's caller token */
#define TB1 3     /* client B's fresh tokens */
#define TB2 4

/* threads: each has one slot (connection) per node */
#define TA1 0
#define TA2 1
#define TWD 2
#define TB 3
#define NT 4
#define NS (NT * NN)
#define SL(t, n) ((t) * NN + (n))

/* handle bits (valid, held, prot) */
#define HA1 1
#define HA2 2
#define HB 4
#define HBT(t) ((t) == TB -> HB : ((t) == TA2 -> HA2 : HA1))
#define HBS(s) HBT((s) / NN)

/* listening waiters (bits) */
#define LA1 1
#define LB 2

/* operations */
#define OP_SETNX 1   /* SET key tok NX PX ttl */
#define OP_ACQ 2     /* acquire_as script (D1); SET NX when OLD_REACQUIRE */
#define OP_ACQW 3    /* waiter's acquire script (may take the handoff) */
#define OP_DEL 4     /* release script (token-checked delete / handoff) */
#define OP_PEXP 5    /* extend script (token-checked PEXPIRE) */
#define OP_INSPECT 6 /* inspect script (adopt) */
#define OP_NOP 7     /* a watchdog round that renews nothing of this key */

/* slot states */
#define S_IDLE 0
#define S_SENT 1 /* in flight */
#define S_DONE 2 /* applied, reply received */
#define S_TMO 3  /* timed out: counted failed, uncertain (see orph) */
#define S_SKIP 4 /* not sent (identity_gate): counted failed, certain */

/* replies */
#define R_NO 0
#define R_PLACED 1
#define R_OURS 2 /* already-ours (D1) */
#define R_YES 3

byte val[NN];  /* the key on each node */
byte prot[NN]; /* handles whose validity the key's ttl covers */
byte valid;    /* handles (or attempts) with validity left */
byte held;     /* handles that exist and believe they hold */
byte listen;   /* subscribed waiters */
byte users;    /* client A: registered users of (key, TA) */
bit pend[NN];  /* client A: ghost (key, TA) pending in the node's list */
byte faults = FAULTS;
bit kept;      /* A1's handle is in the watchdog */
bit wdbusy;    /* the watchdog is renewing A1's handle */
byte btok;     /* B's current token */

byte st[NS];   /* slot state */
byte rep[NS];  /* slot reply */
byte sop[NS];  /* slot operation */
byte stok[NS]; /* slot token */
bit sg[NS];    /* a ghost delete of (key, TA) queued ahead on this slot */
bit sdel[NS];  /* this slot carries an in-flight delete of (key, TA) */
bit orph[NS];  /* timed out, may still be applied (Net) */

#if NN == 1
#define EACHN(M, t) M(t, 0)
#define ALLN(e) (e(0))
#define CNT(e) (e(0))
#else
#define EACHN(M, t) M(t, 0) M(t, 1) M(t, 2)
#define ALLN(e) (e(0) && e(1) && e(2))
#define CNT(e) (e(0) + e(1) + e(2))
#endif

#define HASTOK(n) (val[n] == TA -> 1 : 0)
#define HASB(n) (val[n] == btok -> 1 : 0)
#define DFLIGHT(n) (sdel[SL(TA1, n)] || sdel[SL(TA2, n)] || sdel[SL(TWD, n)])
#define NOFLIGHT(n) (!DFLIGHT(n))
#define NOPEND(n) (!pend[n])

/* ---- node side: the scripts, applied atomically ---------------------- */

/* rule release_script: redlock__script_release (src/scripts.c); own = 0 */
inline del_tok(n, tk, r)
{
    if
    :: val[n] == tk ->
        if
        :: listen != 0 -> val[n] = HANDOFF
        :: else -> val[n] = FREE
        fi;
        prot[n] = 0;
        r = R_YES
    :: else -> r = R_NO
    fi
}

/* rule ghost_delete: the EVAL of the release script queued by
 * queue_ghosts (src/node.c) ahead of another exchange's commands */
inline ghost_apply(n)
{
    printf("  node %d: GHOST DELETE of token %d (value was %d)\n", n, TA, val[n]);
    if
    :: val[n] == TA ->
        if
        :: listen != 0 -> val[n] = HANDOFF
        :: else -> val[n] = FREE
        fi;
        prot[n] = 0
    :: else
    fi
}

/* rule apply: what node n does with slot s's command */
inline apply_main(s, n)
{
    if
    :: sop[s] == OP_SETNX ->
        /* plain acquire (acquire_once in src/lock.c, SET NX PX) */
        if
        :: val[n] == FREE -> val[n] = stok[s]; prot[n] = HBS(s); rep[s] = R_PLACED
        :: else -> rep[s] = R_NO
        fi
    :: sop[s] == OP_ACQ || sop[s] == OP_ACQW ->
        /* rule acquire_script (D1): refused / placed / already-ours */
        if
        :: val[n] == stok[s] ->
#ifdef OLD_REACQUIRE
            rep[s] = R_NO /* today: SET NX (or the waiter script) refuses */
#else
            prot[n] = prot[n] | HBS(s); /* ttl raised, never shortened */
            rep[s] = R_OURS
#endif
        :: val[n] == FREE || (val[n] == HANDOFF && sop[s] == OP_ACQW) ->
            val[n] = stok[s]; prot[n] = HBS(s); rep[s] = R_PLACED
        :: else -> rep[s] = R_NO
        fi
    :: sop[s] == OP_DEL -> del_tok(n, stok[s], rep[s])
    :: sop[s] == OP_PEXP ->
        /* rule extend_script: redlock__script_extend */
        if
        :: val[n] == stok[s] -> prot[n] = prot[n] | HBS(s); rep[s] = R_YES
        :: else -> rep[s] = R_NO
        fi
    :: sop[s] == OP_INSPECT ->
        /* rule inspect_script: the key's pttl bounds adopt's validity */
        if
        :: val[n] == stok[s] -> prot[n] = prot[n] | HBS(s); rep[s] = R_OURS
        :: else -> rep[s] = R_NO
        fi
    :: sop[s] == OP_NOP -> rep[s] = R_YES
    fi;
    printf("  node %d: thread %d op %d token %d -> reply %d (value now %d)\n",
           n, s / NN, sop[s], stok[s], rep[s], val[n])
}

/* ---- client side: sending and exchanging ------------------------------- */

/* rule resolve: a client's abandoned requests to node n are applied
 * before its next send there, or never (ASSUMPTION, see the header) */
inline resolve_slot(s)
{
    orph[s] = 0;
    sg[s] = 0
}
inline resolve(t, n)
{
    if
    :: t == TB -> resolve_slot(SL(TB, n))
    :: else ->
        resolve_slot(SL(TA1, n));
        resolve_slot(SL(TA2, n));
        resolve_slot(SL(TWD, n))
    fi
}

inline send(t, n, o, tk)
{
    resolve(t, n);
    st[SL(t, n)] = S_SENT;
    sop[SL(t, n)] = o;
    stok[SL(t, n)] = tk;
    rep[SL(t, n)] = R_NO
}

/* rule exchange: redlock__exchange (src/io.c, src/quorum.c): every slot of
 * thread t is answered (in any order, interleaved with everyone else) or
 * times out; a ghost queued ahead is applied first (one connection is
 * FIFO).  An exchange settles a delete in flight by reply or abandon. */
#define APPLY_OPT(t, n) \
    :: atomic { st[SL(t, n)] == S_SENT -> \
        if \
        :: sg[SL(t, n)] -> ghost_apply(n); sg[SL(t, n)] = 0 \
        :: else -> apply_main(SL(t, n), n); st[SL(t, n)] = S_DONE; \
                   sdel[SL(t, n)] = 0 \
        fi }
#define TMO_OPT(t, n) \
    :: atomic { faults > 0 && st[SL(t, n)] == S_SENT -> \
        faults--; st[SL(t, n)] = S_TMO; orph[SL(t, n)] = 1; \
        printf("  thread %d: node %d TIMES OUT (request may land later)\n", t, n); \
        sdel[SL(t, n)] = 0 }
#define NOTSENT(t, n) (st[SL(t, n)] != S_SENT)
#define NS_A1(n) NOTSENT(TA1, n)
#define NS_A2(n) NOTSENT(TA2, n)
#define NS_WD(n) NOTSENT(TWD, n)
#define NS_B(n) NOTSENT(TB, n)

#define EXCHANGE(t, done, fin) \
    do \
    EACHN(APPLY_OPT, t) \
    EACHN(TMO_OPT, t) \
    :: atomic { done -> fin }; break \
    od

/* tallies over thread t's slots */
#define IS(t, n, r) (st[SL(t, n)] == S_DONE && rep[SL(t, n)] == r -> 1 : 0)
#define FAILED(t, n) (st[SL(t, n)] == S_TMO || st[SL(t, n)] == S_SKIP -> 1 : 0)
#if NN == 1
#define COUNT(t, r) IS(t, 0, r)
#define COUNTF(t) FAILED(t, 0)
#else
#define COUNT(t, r) (IS(t, 0, r) + IS(t, 1, r) + IS(t, 2, r))
#define COUNTF(t) (FAILED(t, 0) + FAILED(t, 1) + FAILED(t, 2))
#endif

/* ---- client A's identity bookkeeping ------------------------------------ */

/* rule ghost_add: redlock__node_add_ghost (src/node.c), called by
 * undo_acquire and release_many; new: not while another user of the
 * identity is registered (D2).  `others' is users excluding the caller. */
inline ghost_add(n, others)
{
    printf("  A: ghost (key, %d) for node %d? other users %d\n", TA, n, others);
#if NEW_GHOST
    if
    :: others == 0 -> pend[n] = 1
    :: else
    fi
#else
    pend[n] = 1
#endif
}

/* rule identity_gate (D4, new code before acquire_once / adopt's inspect):
 * the attempt's validity starts; cancel the pending ghosts of (key, TA);
 * send at once where no delete of (key, TA) is in flight, else wait
 * (a_wait).  OLD_GHOST: no cancel, no wait. */
inline a_start(t, o, hb)
{
    valid = valid | hb;
    for (n : 0 .. NN - 1) { prot[n] = prot[n] & ~hb };
#if NEW_GHOST
    for (n : 0 .. NN - 1) { pend[n] = 0 };
    if
    :: ALLN(NOFLIGHT) -> for (n : 0 .. NN - 1) { send(t, n, o, TA) }; sent = 1
    :: else -> sent = 0
    fi
#else
    for (n : 0 .. NN - 1) { send(t, n, o, TA) };
    sent = 1
#endif
}

/* identity_gate, continued: the wait (bounded by the deadline) for the
 * deletes in flight to settle; a node still in flight when the deadline
 * comes is not sent to and counts as failed */
inline a_wait(t, o)
{
#if NEW_GHOST
    if
    :: sent -> sent = 0
    :: atomic { !sent && ALLN(NOFLIGHT) ->
        for (n : 0 .. NN - 1) { send(t, n, o, TA) } }
    :: atomic { !sent && !ALLN(NOFLIGHT) -> /* the deadline came first */
#ifdef PER_NODE_SKIP
        for (n : 0 .. NN - 1) {
            if
            :: DFLIGHT(n) -> st[SL(t, n)] = S_SKIP;
                printf("  thread %d: node %d skipped (delete in flight)\n", t, n)
            :: else -> send(t, n, o, TA)
            fi
        }
#else
        /* redlock__handle_claim fails (REDLOCK_IO): the try sends
         * nothing anywhere */
        for (n : 0 .. NN - 1) { st[SL(t, n)] = S_SKIP };
        printf("  thread %d: claim gave up (delete in flight): nothing sent\n", t)
#endif
        }
    fi
#else
    sent = 0
#endif
}

/* Whether the undo / a release's deletes are tracked as in flight (and so
 * waited for by identity_gate).  BRIEF_GATE: only ghosts are. */
#ifdef BRIEF_GATE
#define DEL_TRACKED 0
#else
#define DEL_TRACKED 1
#endif

/* rule undo_acquire: undo_acquire (src/lock.c).  Today: delete on every
 * node that answered, ghost on the uncertain ones.  New (D2): delete only
 * where we answered "placed", and only when no other user of the identity
 * is registered; already-ours untouched; ghosts per ghost_add. */
#ifdef OLD_REACQUIRE
#define UNDO_DEL(t, n) (st[SL(t, n)] == S_DONE)
#elif defined(BRIEF_GATE)
#define UNDO_DEL(t, n) (st[SL(t, n)] == S_DONE && rep[SL(t, n)] == R_PLACED)
#else
#define UNDO_DEL(t, n) (st[SL(t, n)] == S_DONE && rep[SL(t, n)] == R_PLACED && users == 1)
#endif
#define UNSENT_A(t, n) (st[SL(t, n)] != S_SENT)

inline undo_start(t)
{
    for (n : 0 .. NN - 1) {
        if
        :: st[SL(t, n)] == S_TMO -> ghost_add(n, users - 1); st[SL(t, n)] = S_IDLE
        :: UNDO_DEL(t, n) -> send(t, n, OP_DEL, TA); sdel[SL(t, n)] = DEL_TRACKED
        :: else -> st[SL(t, n)] = S_IDLE
        fi
    }
}

/* the end of an undo's or a release's exchange: a ghost where it timed
 * out (ghost_add) */
inline finish_a(t)
{
    for (n : 0 .. NN - 1) {
        if
        :: st[SL(t, n)] == S_TMO -> ghost_add(n, users - 1)
        :: else
        fi;
        st[SL(t, n)] = S_IDLE
    }
}

/* rule release_last: redlock_release -> release_many (src/lock.c).  The
 * handle stops believing first.  New (D3 + gate): the deletes are sent
 * only by the last user of the identity; otherwise only the handle goes.
 * OLD_RELEASE: always; BRIEF_GATE: unless another live handle exists. */
#ifdef OLD_RELEASE
#define REL_DEL 1
#elif defined(BRIEF_GATE)
#define REL_DEL ((held & (HA1 | HA2)) == 0)
#else
#define REL_DEL (users == 1)
#endif

inline release_start(t, hb)
{
    held = held & ~hb;
    printf("thread %d release: users %d, deletes sent %d\n", t, users, REL_DEL);
    if
    :: REL_DEL ->
        for (n : 0 .. NN - 1) {
            send(t, n, OP_DEL, TA);
            sdel[SL(t, n)] = DEL_TRACKED
        }
    :: else
    fi
}

inline release_finish(t, hb)
{
    finish_a(t);
    valid = valid & ~hb;
    users--
}

/* ---- the processes ----------------------------------------------------- */

inline a1_tally()
{
    pl = COUNT(TA1, R_PLACED); ou = COUNT(TA1, R_OURS);
    no = COUNT(TA1, R_NO); fl = COUNTF(TA1);
    printf("A1 acquire_as tally: placed %d ours %d no %d failed %d valid %d\n", pl, ou, no, fl, (valid & HA1) != 0);
    if
    :: pl + ou >= Q && (valid & HA1) ->
        held = held | HA1; listen = listen & ~LA1;
        kept = 1; /* redlock_keepalive */
        for (n : 0 .. NN - 1) {
#if !NEW_GHOST
            pend[n] = 0; /* forget_ghost: the pending ones only */
#endif
            st[SL(TA1, n)] = S_IDLE
        }
    :: else ->
        valid = valid & ~HA1;
        if
        :: pl + fl > 0 -> undo_start(TA1)
        :: else -> for (n : 0 .. NN - 1) { st[SL(TA1, n)] = S_IDLE }
        fi
    fi
}

/* after the undo: BUSY -> a waiter's try; I/O -> the call fails, and A1
 * calls again; at most two tries in all */
inline a1_after_undo()
{
    finish_a(TA1);
    if
    :: att == 0 && no > NN - Q ->
        att = 1; listen = listen | LA1; op = OP_ACQW;
        a_start(TA1, OP_ACQW, HA1)
    :: att == 0 && no <= NN - Q -> att = 2; users--
    :: else -> att = 3; users--; listen = listen & ~LA1
    fi;
    pl = 0; ou = 0; no = 0; fl = 0
}

/* rule a1_acquire_as: redlock_acquire_as -> acquire (loop) -> acquire_once
 * (src/lock.c), with wait_ms > 0; then redlock_keepalive and
 * redlock_release.  A BUSY first attempt is followed by a waiter's attempt
 * in the same call; an I/O failure ends the call and A1 calls again. */
active proctype A1()
{
    byte n, att, pl, ou, no, fl, op = OP_ACQ;
    bit sent;
    atomic { users++; a_start(TA1, OP_ACQ, HA1) } /* rule identity_register */
attempt:
    a_wait(TA1, op);
    EXCHANGE(TA1, ALLN(NS_A1), a1_tally());
    if
    :: held & HA1 -> goto hold
    :: else
    fi;
    EXCHANGE(TA1, ALLN(NS_A1), a1_after_undo());
    if
    :: att == 1 -> goto attempt
    :: att == 2 -> /* the second call */
        atomic { att = 1; op = OP_ACQ; users++; a_start(TA1, OP_ACQ, HA1) };
        goto attempt
    :: att == 3 -> goto done
    fi;
hold:
    /* redlock_release: redlock__watchdog_remove waits for the round */
    atomic { kept = 0; att = 0; pl = 0; ou = 0; no = 0; fl = 0; op = 0 };
    atomic { wdbusy == 0 -> release_start(TA1, HA1) };
    EXCHANGE(TA1, ALLN(NS_A1), release_finish(TA1, HA1));
done:
    skip
}

inline a2_tally()
{
    pl = COUNT(TA2, R_PLACED); ou = COUNT(TA2, R_OURS); fl = COUNTF(TA2);
    printf("A2 tally (adopt %d): placed %d ours %d failed %d valid %d\n", adopt, pl, ou, fl, (valid & HA2) != 0);
    if
    :: pl + ou >= Q && (valid & HA2) ->
        held = held | HA2;
        for (n : 0 .. NN - 1) {
#if !NEW_GHOST
            if
            :: !adopt -> pend[n] = 0 /* forget_ghost */
            :: else
            fi;
#endif
            st[SL(TA2, n)] = S_IDLE
        }
    :: else ->
        valid = valid & ~HA2;
        if
        :: !adopt && pl + fl > 0 -> undo_start(TA2)
        :: else -> for (n : 0 .. NN - 1) { st[SL(TA2, n)] = S_IDLE }
        fi
    fi;
    pl = 0; ou = 0; fl = 0
}

/* rule a2_reacquire: a second redlock_acquire_as (wait_ms = 0) or
 * redlock_adopt (src/lock.c) of the same identity in client A, then
 * redlock_release. */
active proctype A2()
{
    byte n, pl, ou, fl;
    bit sent, adopt;
#ifdef A2_AFTER_HOLD
    (held & HA1) != 0; /* the re-acquire starts while A1 holds */
#endif
    if
#if A2MODE != 2
    :: atomic { users++; a_start(TA2, OP_ACQ, HA2) }
#endif
#if A2MODE != 1
    :: atomic { users++; adopt = 1; a_start(TA2, OP_INSPECT, HA2) }
#endif
    fi;
    a_wait(TA2, (adopt -> OP_INSPECT : OP_ACQ));
    EXCHANGE(TA2, ALLN(NS_A2), a2_tally());
    if
    :: held & HA2 ->
        atomic { release_start(TA2, HA2) };
        EXCHANGE(TA2, ALLN(NS_A2), release_finish(TA2, HA2))
    :: else ->
        EXCHANGE(TA2, ALLN(NS_A2), finish_a(TA2); users--)
    fi
}

/* rule watchdog_round: watchdog_main -> work_round -> redlock__renew
 * (src/watchdog.c, src/lock.c), on connections from redlock__node_get,
 * which first queues the node's ghost deletes (queue_ghosts, src/node.c);
 * node_put returns the ghosts of a broken connection to the list
 * (rule ghost_return; new: dropped while the identity is in use). */
/* rule ghost_return: return_ghosts from redlock__node_put (src/node.c) */
#ifdef BRIEF_GATE
#define RETURN_OK 1
#elif NEW_GHOST
#define RETURN_OK (users == 0)
#else
#define RETURN_OK 1
#endif

#if NEW_GHOST && defined(PER_NODE_SKIP) && !defined(BRIEF_GATE) && \
    !defined(NO_RENEW_GATE)
#define RENEW_SKIP(n) DFLIGHT(n)
#else
#define RENEW_SKIP(n) 0
#endif

inline wd_finish()
{
    yes = COUNT(TWD, R_YES); no = COUNT(TWD, R_NO);
    printf("WD round done: renew %d yes %d no %d\n", renew, yes, no);
    if
    :: renew && yes >= Q && (valid & HA1) ->
        /* renewed: the new validity is covered by the yes nodes only */
        for (n : 0 .. NN - 1) {
            if
            :: !(st[SL(TWD, n)] == S_DONE && rep[SL(TWD, n)] == R_YES) ->
                prot[n] = prot[n] & ~HA1
            :: else
            fi
        }
    :: renew && no > NN - Q -> valid = valid & ~HA1 /* mark_lost */
    :: else
    fi;
    for (n : 0 .. NN - 1) {
        if
        :: st[SL(TWD, n)] == S_TMO && (gm & (1 << n)) && RETURN_OK ->
            printf("WD: ghost for node %d returned to the list\n", n);
            pend[n] = 1
        :: else
        fi;
        st[SL(TWD, n)] = S_IDLE
    }
    wdbusy = 0; r++; yes = 0; no = 0; gm = 0; renew = 0
}

active proctype WD()
{
    byte n, r, yes, no, gm;
    bit renew;
end:
    do
    :: atomic {
            r < WDROUNDS && ((kept && (held & HA1)) || !ALLN(NOPEND)) ->
            renew = kept && (held & HA1);
            wdbusy = renew;
            for (n : 0 .. NN - 1) {
                if
                :: renew && RENEW_SKIP(n) ->
                    /* rule renew_gate: a node with a delete of (key, TA)
                     * in flight is not counted (not sent to) */
                    st[SL(TWD, n)] = S_SKIP
                :: (renew && !RENEW_SKIP(n)) || (!renew && pend[n]) ->
                    send(TWD, n, (renew -> OP_PEXP : OP_NOP), TA);
                    if
                    :: pend[n] -> sg[SL(TWD, n)] = 1; sdel[SL(TWD, n)] = 1;
                        printf("WD: carries the ghost for node %d (in flight)\n", n);
                        pend[n] = 0; gm = gm | (1 << n)
                    :: else
                    fi
                :: else
                fi
            }
        };
        EXCHANGE(TWD, ALLN(NS_WD), wd_finish())
    :: r >= WDROUNDS -> break
    od
}

/* rule b_acquire: redlock_acquire (fresh token per attempt) ->
 * acquire_once with SET NX PX, then the waiter's script; then
 * redlock_release (rule b_release). */
inline b_start()
{
    btok = (att == 0 -> TB1 : TB2);
    valid = valid | HB;
    for (n : 0 .. NN - 1) {
        prot[n] = prot[n] & ~HB;
        send(TB, n, (att == 0 -> OP_SETNX : OP_ACQW), btok)
    }
}

inline b_tally()
{
    pl = COUNT(TB, R_PLACED); no = COUNT(TB, R_NO);
    printf("B acquire tally (token %d): placed %d no %d valid %d\n", btok, pl, no, (valid & HB) != 0);
    for (n : 0 .. NN - 1) { st[SL(TB, n)] = S_IDLE };
    if
    :: pl >= Q && (valid & HB) -> held = held | HB; listen = listen & ~LB
    :: else ->
        valid = valid & ~HB; /* undo and ghosts: see the header */
        if
        :: att + 1 < BATT && no > NN - Q ->
            att++; listen = listen | LB; b_start(); retry = 1
        :: else -> listen = listen & ~LB
        fi
    fi;
    pl = 0; no = 0
}

#if BATT > 0
active proctype B()
{
    byte n, pl, no, att;
    bit retry;
    atomic { b_start() };
attempt:
    EXCHANGE(TB, ALLN(NS_B), b_tally());
    if
    :: held & HB
    :: retry -> retry = 0; goto attempt
    :: else -> goto done
    fi;
    atomic {
        held = held & ~HB;
        for (n : 0 .. NN - 1) { send(TB, n, OP_DEL, btok) }
    };
    EXCHANGE(TB, ALLN(NS_B),
             for (n : 0 .. NN - 1) { st[SL(TB, n)] = S_IDLE }; valid = valid & ~HB);
done:
    skip
}
#endif

/* rule orphan: a request on an abandoned connection reaching its node late
 * (ghost delete first) -- or never (resolve drops it) */
#define ORPH_OPT(t, n) \
    :: atomic { orph[SL(t, n)] -> \
        if \
        :: sg[SL(t, n)] -> ghost_apply(n); sg[SL(t, n)] = 0 \
        :: else -> apply_main(SL(t, n), n); orph[SL(t, n)] = 0 \
        fi }

active proctype Net()
{
end:
    do
    EACHN(ORPH_OPT, TA1)
    EACHN(ORPH_OPT, TA2)
    EACHN(ORPH_OPT, TWD)
    EACHN(ORPH_OPT, TB)
    od
}

/* rule time: validity running out, and keys (and the handoff) expiring
 * once no handle their ttl covers has validity left */
#define EXPIRE_OPT(x, n) \
    :: atomic { val[n] != FREE && (prot[n] & valid) == 0 -> \
        printf("  node %d: key (value %d) EXPIRES\n", n, val[n]); \
        val[n] = FREE; prot[n] = 0 }

active proctype Time()
{
end:
    do
    :: atomic { valid & HA1 -> valid = valid & ~HA1; printf("time: A1's validity ends\n") }
    :: atomic { valid & HA2 -> valid = valid & ~HA2; printf("time: A2's validity ends\n") }
    :: atomic { valid & HB -> valid = valid & ~HB; printf("time: B's validity ends\n") }
    EACHN(EXPIRE_OPT, 0)
    od
}

/* S1 and S2, checked in every reachable state (a never claim) */
#define BELIEVES(h) ((held & valid & (h)) != 0)
#define S1 (!(BELIEVES(HA1 | HA2) && BELIEVES(HB)))
#define S2A (!BELIEVES(HA1 | HA2) || CNT(HASTOK) >= Q)
#define S2B (!BELIEVES(HB) || CNT(HASB) >= Q)
#ifdef ONLY_S1
#define INV S1
#else
#define INV (S1 && S2A && S2B)
#endif

never {
    do
    :: !INV -> break
    :: else
    od
}
