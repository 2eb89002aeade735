/*
 * queue.pml -- a Promela model of the waiter queue (issue 13): one Redis
 * node (N = 1, min_replicas = 0), where a release hands the lock to ONE
 * queued waiter in the same atomic step.  The protocol is the one in the
 * queue spec (enqueue push/check/cancel, release with LPOP + PUBLISH).
 * Checked with spin: see model/README.md ("The waiter queue") and
 * scripts/model.sh (runs queue-*).
 *
 * WHAT IS MODELLED.  One key K and its queue Q on one node, and three
 * clients, each with its own token and its own grant channel:
 *   H   holds K at time 0 (placed at 0, validity 0 + TTL).  It releases
 *       at any moment, also after its validity ended (late: K may be
 *       someone else's by then), or never (crashed).
 *   W1  one wait (one acquire call with wait_ms != 0): push at s0, then
 *       sleeps; wakes on a grant message, or on a timer / notifier bump
 *       (check), or at its deadline (cancel).  After holding it may
 *       release at any moment, or keep the key until its validity ends.
 *       Its subscription may go down once and be made again (SUBDROP).
 *   W2  the same, and it may be killed at any moment: its subscription
 *       dies (PUBLISH counts 0), it never acts again; a request it had
 *       sent may still land.
 * The node runs the scripts atomically (d_step): enqueue (push, check,
 * cancel) and release exactly as the spec states them, and expires K
 * when the clock reaches K's expiry.  Q is a list of entries; an entry
 * is (ttl, seq, id, token) of one wait, and as each client has one wait
 * with one token and one ttl, it is represented by the client's number.
 *
 * TIME.  One discrete global clock `now' (0..TMAX), shared by clients
 * and node: clock drift is 0 (validity_end = send time + TTL, no drift
 * allowance).  Every key and queue entry has ttl TTL.  Delays:
 *   a request is processed 0..DREQ ticks after its send (or, after a
 *   fault, possibly never); a reply is received 0..DREP ticks after the
 *   request was processed; a grant message is received 0..DMSG ticks
 *   after the PUBLISH (or never, if the subscription dies meanwhile).
 * The clock does not tick past a due delivery (urgency); clients may be
 * arbitrarily slow.  Within a tick, actions interleave freely.
 *
 * FAULTS.  At most FAULTS (1) request times out at its client: the client
 * counts it failed (push/check: keeps waiting; cancel: gives up, BUSY;
 * the 3/4-ttl check after a grant: holds on the grant's validity if any
 * is left, else keeps waiting); the request may still land until DREQ
 * after its send, or never.  ASSUMPTION (as in redlock.pml: the client
 * resets a connection it gave up): such an orphan lands before the
 * client's next request, or never.
 *
 * THE CLIENT'S VALIDITY (the spec's rules, drift 0):
 *   placed / already ours reply: validity_end = that request's send + TTL
 *   grant message:               validity_end = s0 + TTL, s0 = send time
 *                                of the wait's FIRST push; if that leaves
 *                                less than 3/4 TTL, one check first and
 *                                the validity from its send time.
 * A holder believes it holds while now < validity_end; a release stops
 * the belief when it is sent.
 *
 * PROPERTIES (a never claim: checked in every reachable state)
 *   S   never two clients that believe they hold with validity left.
 *   S2  a client that believes it holds with validity left has its token
 *       in K.
 *   B   a grant to a waiter whose wait has ended does not leave a lock
 *       that no one releases for longer than the waiter's ttl: when K
 *       holds the token of a client that neither believes it holds nor
 *       waits (gave up, killed, validity over, released) -- call the
 *       moment that began dt -- K's expiry is at most dt + TTL + DREQ.
 *       The DREQ: a request of that client still in flight when it gave
 *       up (a cancel that timed out, a check sent just before a kill)
 *       can land afterwards and, finding K ours, raise K's ttl.  STRICT_B
 *       asks for dt + TTL and spin shows that landing (see the README).
 *
 * SWITCHES (spin -D...)
 *   RECV_BASE       mutant: a grant's validity from the grant message's
 *                   receipt + TTL instead of s0 + TTL (breaks S).
 *   NO_TOKEN_CHECK  mutant: release grants / deletes without checking
 *                   that K holds the releaser's token (breaks S).
 *   LAST_PUSH_BASE  mutant: a grant's validity from the send time of the
 *                   wait's latest push or check (a check re-pushes) instead
 *                   of the first push (breaks S: a check sent after the
 *                   grant, slow or lost, moves the base past the grant).
 *   STRICT_B        property B without the DREQ allowance (fails).
 *   ONLY_S          check S alone (a mutant's trail then ends with two
 *                   holders).
 *   TMAX, TTL, DREQ, DREP, DMSG, FAULTS, SUBDROP (W1's subscription
 *   drops at most this often), NOKILL (W2 is never killed).
 *
 * NOT MODELLED: clock drift (validity without the drift allowance; all
 * clocks are one), N > 1 / min_replicas (the old handoff path), Q's own
 * expiry (PEXPIRE qttl: it only drops entries, like a skip), the fence
 * counter F, waits that start again with the same token (acquire_as,
 * ghosts, undo), a second wait of a client, a plain SET NX try from
 * outside the queue other than H's initial hold.
 *
 * Trail printouts: "t=<now>", names H, W1, W2; "--" is free / empty.
 */

#ifndef TMAX
#define TMAX 8
#endif
#ifndef TTL
#define TTL 3
#endif
#ifndef DREQ
#define DREQ 1
#endif
#ifndef DREP
#define DREP 1
#endif
#ifndef DMSG
#define DMSG 1
#endif
#ifndef FAULTS
#define FAULTS 1
#endif
#ifndef SUBDROP
#define SUBDROP 1
#endif
#ifdef STRICT_B
#define BSLACK 0
#else
#define BSLACK DREQ
#endif

/* K's value: FREE or a client's token; the clients */
#define FREE 0
#define H 1
#define W1 2
#define W2 3
#define NC 4 /* index 0 unused */
/* a client's (or K's, or a queue entry's) name in printouts: %c%c */
#define N1(c) (c == FREE -> 45 : (c == H -> 72 : 87))
#define N2(c) (c == FREE -> 45 : (c == H -> 32 : 47 + c))
#define CN(c) N1(c), N2(c)
#define QMAX 3

/* client states */
#define C_IDLE 0 /* the wait has not started */
#define C_REQ 1  /* waiting, with a request in flight */
#define C_WAIT 2 /* waiting, queued, asleep */
#define C_HOLD 3 /* holds (believes while now < ve) */
#define C_DONE 4 /* gave up, or released */
#define C_DEAD 5 /* killed */

/* requests (and the replies below): printed by name in trails */
mtype = { push, check, cancel, rel, placed, ours, queued, busy };

/* request slot */
#define R_NONE 0
#define R_FLIGHT 1   /* sent, not yet processed */
#define R_ANSWERED 2 /* processed, reply on its way */
#define R_ORPHAN 3   /* the client gave up on it; may still land */

/* replies: placed (K was free, now ours), ours (already ours: ttl
 * raised), queued ("Q <pos>"), busy (cancel: held by other, entry
 * removed) */

byte now;          /* the clock */
byte kv = H;       /* K's value */
byte kexp = TTL;   /* K's expiry (K lives while now < kexp) */
byte q[QMAX];      /* Q: entries (client numbers), q[0] first */
byte qn;           /* Q's length */
bit sub[NC];       /* the client's grant channel is subscribed */
bit msg[NC];       /* a grant message on its way */
byte msgt[NC];     /* ... published at */

byte cs[NC];       /* client state */
byte ve[NC];       /* validity end (C_HOLD) */
byte spush[NC];    /* s0: send time of the wait's first push */
bit granted[NC];   /* a grant message for the current wait arrived */
bit gchk[NC];      /* the check in flight is the 3/4-ttl check */
byte gve[NC];      /* ... and the grant's validity end */
#ifdef LAST_PUSH_BASE
byte lastp[NC];    /* send time of the latest push or check */
#endif
#ifdef RECV_BASE
byte grt[NC];      /* when the grant message arrived */
#endif

mtype rq[NC];      /* request */
byte rqs[NC];      /* request slot state */
byte rqt[NC];      /* request send time */
mtype rp[NC];      /* reply */
byte rpt[NC];      /* when the request was processed */

byte faults = FAULTS;
byte subdrops = SUBDROP;
byte dk;           /* property B: whose orphaned token K holds ... */
byte dt;           /* ... since when */

hidden byte i, j, e;
hidden mtype r;
hidden byte hq;

/* ---- property helpers ---------------------------------------------------- */

#define BEL(c) (cs[c] == C_HOLD && now < ve[c])
#define WAITING(c) (cs[c] == C_REQ || cs[c] == C_WAIT)
#define ORPHANED (kv != FREE && !WAITING(kv) && !BEL(kv))

/* property B bookkeeping, at the end of every step */
inline upd()
{
    if
    :: ORPHANED && dk != kv -> dk = kv; dt = now
    :: !ORPHANED -> dk = 0; dt = 0
    :: else
    fi
}

/* ---- the node: Q, and the scripts (atomic) ------------------------------ */

inline qhas(c)
{
    hq = 0;
    for (i : 0 .. QMAX - 1) {
        if
        :: i < qn && q[i] == c -> hq = 1
        :: else
        fi
    };
    i = 0
}

/* LREM Q 0 entry */
inline qrem(c)
{
    j = 0;
    for (i : 0 .. QMAX - 1) {
        if
        :: i < qn && q[i] != c -> q[j] = q[i]; j++
        :: else
        fi
    };
    for (i : 0 .. QMAX - 1) {
        if
        :: i >= j -> q[i] = 0
        :: else
        fi
    };
    qn = j; i = 0; j = 0
}

/* RPUSH Q entry */
inline qpush(c)
{
    assert(qn < QMAX); /* a model assumption: one entry per wait */
    q[qn] = c;
    qn++
}

/* LPOP Q */
inline qpop()
{
    e = q[0];
    for (i : 1 .. QMAX - 1) { q[i - 1] = q[i] };
    q[QMAX - 1] = 0;
    qn--;
    i = 0
}

/* rule enqueue: enqueue(K, Q; token, ttl, entry, mode) */
inline enqueue(c, m)
{
    if
    :: kv == c -> /* already ours: raise the ttl, never lower */
        if
        :: kexp < now + TTL -> kexp = now + TTL
        :: else
        fi;
        if
        :: m != push -> qrem(c)
        :: else
        fi;
        r = ours
    :: kv != FREE && kv != c -> /* held by another */
        if
        :: m == cancel -> qrem(c); r = busy
        :: m == push -> qpush(c); r = queued
        :: m == check ->
            qhas(c);
            if
            :: !hq -> qpush(c) /* LPOS: absent, re-push */
            :: else
            fi;
            hq = 0;
            r = queued
        fi
    :: kv == FREE -> /* free: goes to whoever tries first */
        if
        :: m != push -> qrem(c)
        :: else
        fi;
        kv = c; kexp = now + TTL; r = placed
    fi
}

/* rule release: release(K, Q; token) */
inline release(c)
{
#ifndef NO_TOKEN_CHECK
    if
    :: kv != c -> printf("t=%d   node: release by %c%c: not ours (K=%c%c): 0\n", now, CN(c), CN(kv))
    :: else ->
#endif
        do
        :: qn == 0 ->
            printf("t=%d   node: release by %c%c: queue empty: DEL K\n", now, CN(c));
            kv = FREE; kexp = 0; break
        :: qn > 0 ->
            qpop();
            if
            :: sub[e] -> /* PUBLISH counts 1: SET K e.token PX e.ttl */
                assert(!msg[e]); /* a model assumption: one grant at a time */
                msg[e] = 1; msgt[e] = now;
                kv = e; kexp = now + TTL;
                printf("t=%d   node: release by %c%c: GRANT to %c%c (PUBLISH 1; K=%c%c until %d)\n", now, CN(c), CN(e), CN(kv), kexp);
                e = 0;
                break
            :: else ->
                printf("t=%d   node: release by %c%c: %c%c not subscribed (PUBLISH 0): skipped\n", now, CN(c), CN(e));
                e = 0
            fi
        od
#ifndef NO_TOKEN_CHECK
    fi
#endif
}

/* the node processes client c's request (in flight, or an orphan) */
inline process(c)
{
    if
    :: rq[c] == rel ->
        printf("t=%d   node: rel by %c%c (sent %d)\n", now, CN(c), rqt[c]);
        release(c); r = 0
    :: else ->
        enqueue(c, rq[c]);
        printf("t=%d   node: %e by %c%c (sent %d) -> %e; K=%c%c until %d, Q=[%c%c %c%c %c%c]\n",
               now, rq[c], CN(c), rqt[c], r, CN(kv), kexp, CN(q[0]), CN(q[1]), CN(q[2]))
    fi;
    if
    :: rqs[c] == R_FLIGHT && rq[c] != rel && cs[c] != C_DEAD ->
        rqs[c] = R_ANSWERED; rp[c] = r; rpt[c] = now
    :: else -> rqs[c] = R_NONE; rq[c] = 0; rqt[c] = 0
    fi;
    r = 0
}

/* ---- the clients ---------------------------------------------------------- */

inline clear_slot(c)
{
    rq[c] = 0; rqs[c] = R_NONE; rqt[c] = 0; rp[c] = 0; rpt[c] = 0
}

/* a new request; an orphan of the same client is dropped (ASSUMPTION) */
inline send(c, m)
{
    assert(rqs[c] == R_NONE || rqs[c] == R_ORPHAN);
    rq[c] = m; rqs[c] = R_FLIGHT; rqt[c] = now; rp[c] = 0; rpt[c] = 0;
    printf("t=%d %c%c sends %e\n", now, CN(c), m)
}

inline end_wait(c)
{
    granted[c] = 0; gchk[c] = 0; gve[c] = 0; spush[c] = 0;
#ifdef LAST_PUSH_BASE
    lastp[c] = 0;
#endif
#ifdef RECV_BASE
    grt[c] = 0;
#endif
    skip
}

inline hold(c, v)
{
    assert(v > now); /* replies come within DREQ + DREP < TTL */
    cs[c] = C_HOLD; ve[c] = v;
    printf("t=%d %c%c HOLDS, validity until %d\n", now, CN(c), ve[c]);
    end_wait(c)
}

inline give_up(c)
{
    cs[c] = C_DONE;
    end_wait(c);
    printf("t=%d %c%c gives up (BUSY)\n", now, CN(c))
}

/* the base of a grant's validity */
#ifdef RECV_BASE
#define GBASE(c) grt[c]
#elif defined(LAST_PUSH_BASE)
#define GBASE(c) lastp[c]
#else
#define GBASE(c) spush[c]
#endif

inline on_reply(c)
{
    if
    :: rq[c] == rel -> skip /* not answered: see process() */
    :: rp[c] == placed || rp[c] == ours -> hold(c, rqt[c] + TTL)
    :: rp[c] == queued ->
        if
        :: gchk[c] -> granted[c] = 0 /* the grant's key was lost */
        :: else
        fi;
        gchk[c] = 0; gve[c] = 0;
        cs[c] = C_WAIT
    :: rp[c] == busy -> give_up(c)
    fi;
    clear_slot(c)
}

/* the client's reaction to a request that timed out */
inline on_fail(c)
{
    if
    :: cs[c] != C_REQ -> skip /* a release: the client is done anyway */
    :: rq[c] == cancel -> give_up(c)
    :: rq[c] == check && gchk[c] && gve[c] > now -> hold(c, gve[c])
    :: else -> gchk[c] = 0; gve[c] = 0; cs[c] = C_WAIT
    fi
}

/* rule waiter: one acquire call with wait_ms != 0 (spec steps 1-5), then
 * the holder's release; also H's hold and release (c == H starts in
 * C_HOLD) */
proctype Client(byte c)
{
end:
    do
    /* start the wait: enqueue(push) at s0 */
    :: d_step { cs[c] == C_IDLE ->
            cs[c] = C_REQ; spush[c] = now;
            sub[c] = 1; /* the notifier SUBSCRIBEs as the wait starts */
#ifdef LAST_PUSH_BASE
            lastp[c] = now;
#endif
            send(c, push); upd() }
    /* a reply arrives */
    :: d_step { rqs[c] == R_ANSWERED -> on_reply(c); upd() }
    /* timer or notifier bump: enqueue(check) */
    :: d_step { cs[c] == C_WAIT ->
            cs[c] = C_REQ;
#ifdef LAST_PUSH_BASE
            lastp[c] = now;
#endif
            send(c, check); upd() }
    /* the deadline: enqueue(cancel); the grant slot is dropped */
    :: d_step { cs[c] == C_WAIT ->
            cs[c] = C_REQ; granted[c] = 0;
            send(c, cancel); upd() }
    /* rule grant_validity: a grant message arrived for this wait (step 4):
     * validity from s0, or one check first when under 3/4 ttl is left */
    :: d_step { cs[c] == C_WAIT && granted[c] ->
            granted[c] = 0;
            gve[c] = GBASE(c) + TTL;
            if
            :: gve[c] > now && 4 * (gve[c] - now) >= 3 * TTL ->
                printf("t=%d %c%c takes the grant\n", now, CN(c));
                hold(c, gve[c])
            :: else -> /* less than 3/4 ttl left: one check first */
                printf("t=%d %c%c: the grant leaves validity until %d: checks first\n", now, CN(c), gve[c]);
                gchk[c] = 1; cs[c] = C_REQ;
                send(c, check)
            fi;
            upd() }
    /* release (also after the validity ended: late) */
    :: d_step { cs[c] == C_HOLD ->
            cs[c] = C_DONE; ve[c] = 0;
            send(c, rel); upd() }
#ifndef NOKILL
    /* W2 is killed: its subscription dies with it */
    :: d_step { c == W2 && cs[c] != C_IDLE && cs[c] != C_DEAD ->
            printf("t=%d %c%c KILLED\n", now, CN(c));
            cs[c] = C_DEAD; ve[c] = 0; sub[c] = 0; msg[c] = 0; msgt[c] = 0;
            end_wait(c);
            if
            :: rqs[c] == R_FLIGHT -> rqs[c] = R_ORPHAN
            :: rqs[c] == R_ANSWERED -> clear_slot(c)
            :: else
            fi;
            upd() }
#endif
    od
}

/* the node: each client's request, in flight or orphaned, in any order */
active proctype Node()
{
end:
    do
    :: d_step { rqs[H] == R_FLIGHT || rqs[H] == R_ORPHAN -> process(H); upd() }
    :: d_step { rqs[W1] == R_FLIGHT || rqs[W1] == R_ORPHAN -> process(W1); upd() }
    :: d_step { rqs[W2] == R_FLIGHT || rqs[W2] == R_ORPHAN -> process(W2); upd() }
    od
}

/* the network: grant messages, subscriptions, time-outs */

/* rule notifier: the grant message reaches the client's notifier, which
 * marks the wait's slot (key, token, seq) granted; no wait: ignored */
inline deliver(c)
{
    msg[c] = 0; msgt[c] = 0;
    if
    :: cs[c] == C_WAIT || (cs[c] == C_REQ && rq[c] != cancel && !gchk[c]) ->
        granted[c] = 1;
#ifdef RECV_BASE
        grt[c] = now;
#endif
        printf("t=%d %c%c receives its grant message\n", now, CN(c))
    :: else -> printf("t=%d %c%c: grant message for no current wait: ignored\n", now, CN(c))
    fi
}

inline time_out(c)
{
    faults--;
    printf("t=%d %c%c: its %e TIMES OUT\n", now, CN(c), rq[c]);
    on_fail(c);
    if
    :: rqs[c] == R_FLIGHT -> rqs[c] = R_ORPHAN /* may land until rqt + DREQ */
    :: else -> clear_slot(c)
    fi
}

active proctype Net()
{
end:
    do
    :: d_step { msg[W1] -> deliver(W1); upd() }
    :: d_step { msg[W2] -> deliver(W2); upd() }
    /* W1's subscriber connection breaks (a message on it is lost), and
     * is made again later (the notifier's bump: W1 may check any time) */
    :: d_step { sub[W1] && subdrops > 0 ->
            subdrops--; sub[W1] = 0; msg[W1] = 0; msgt[W1] = 0;
            printf("t=%d W1: subscription DOWN\n", now) }
    :: d_step { !sub[W1] && cs[W1] != C_IDLE ->
            sub[W1] = 1;
            printf("t=%d W1: subscribed again\n", now) }
    /* a request times out at its client */
    :: d_step { faults > 0 && (rqs[H] == R_FLIGHT || rqs[H] == R_ANSWERED) -> time_out(H); upd() }
    :: d_step { faults > 0 && (rqs[W1] == R_FLIGHT || rqs[W1] == R_ANSWERED) -> time_out(W1); upd() }
    :: d_step { faults > 0 && (rqs[W2] == R_FLIGHT || rqs[W2] == R_ANSWERED) -> time_out(W2); upd() }
    od
}

/* the clock: ticks unless a delivery is due; K expires; orphans that did
 * not land by rqt + DREQ never will; validity ends */
#define DUE(c) ((rqs[c] == R_FLIGHT && rqt[c] + DREQ <= now) || \
                (rqs[c] == R_ANSWERED && rpt[c] + DREP <= now) || \
                (msg[c] && msgt[c] + DMSG <= now))

inline tick_client(c)
{
    if
    :: rqs[c] == R_ORPHAN && rqt[c] + DREQ < now -> clear_slot(c)
    :: else
    fi;
    if
    :: cs[c] == C_HOLD && ve[c] != 0 && ve[c] <= now -> ve[c] = 0 /* stops believing */
    :: else
    fi
}

active proctype Clock()
{
end:
    do
    :: d_step { now < TMAX && !DUE(H) && !DUE(W1) && !DUE(W2) ->
            now++;
            tick_client(H); tick_client(W1); tick_client(W2);
            if
            :: kv != FREE && kexp <= now ->
                printf("t=%d   node: K (%c%c) EXPIRES\n", now, CN(kv));
                kv = FREE; kexp = 0
            :: else
            fi;
            upd() }
    od
}

init {
    atomic {
        cs[H] = C_HOLD; ve[H] = TTL; /* H placed K at time 0 */
        upd();
        run Client(H); run Client(W1); run Client(W2)
    }
}

/* ---- the properties, checked in every reachable state ------------------- */

#define S1 (!(BEL(H) && BEL(W1)) && !(BEL(H) && BEL(W2)) && !(BEL(W1) && BEL(W2)))
#define S2 ((!BEL(H) || kv == H) && (!BEL(W1) || kv == W1) && (!BEL(W2) || kv == W2))
#define PB (!ORPHANED || kexp <= dt + TTL + BSLACK)
#ifdef ONLY_S
#define INV S1
#else
#define INV (S1 && S2 && PB)
#endif

never {
    do
    :: !INV -> break
    :: else
    od
}
