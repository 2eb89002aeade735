/* The Lua scripts.  Each runs atomically on the server, which is what makes
 * "delete (or extend) only if the value is still our token" safe.  The SHA1
 * digests are fixed here so that EVALSHA needs no round trip first; a test
 * checks them against SCRIPT LOAD on a real server. */
#include "internal.h"

/* KEYS[1] = lock key, KEYS[2] = waiter queue, KEYS[3] = fence counter
 * (both optional); ARGV[1] = token, ARGV[2] = handoff ms, ARGV[3] = how
 * many of the listeners are the releasing client's own leftovers.  1
 * released, 0 not ours.
 *
 * With a queue (one node: see queue.c) the lock passes straight to the
 * first live waiter: its entry "<ttl> <seq> <client id> <token>" is
 * popped, the grant is published on that client's own channel, and when
 * someone listens there the key becomes the waiter's token with the
 * waiter's ttl, in the same atomic step as the check that it was ours.
 * Nobody listening means the waiter's client is gone (killed: its kernel
 * closed the connection) or deaf for now: it is skipped, and finds out at
 * its next check.  An entry whose ttl is out of range (no client of ours
 * wrote it) is skipped before anything is published, so that the SET
 * cannot fail after a waiter was told.  The grant names the ttl it set,
 * which the waiter checks against its own.  The channel is a shard channel (SPUBLISH, Redis 7),
 * whose count of receivers no pattern subscriber (PSUBSCRIBE *) swells;
 * before Redis 7, PUBSUB NUMSUB counts them.  With a fence counter each
 * grant takes the next number.
 * (model/queue.pml: release)
 *
 * A grant is published only to a subscriber of this very server
 * (PUBSUB SHARDNUMSUB first): SPUBLISH is also copied to the server's
 * replicas, and a waiter still subscribed on one (a master demoted by a
 * failover keeps its subscribers) would take the copy of a grant whose
 * SET was skipped for want of a receiver here for a lock it does not
 * hold (the second black-box review: two holders after CLUSTER FAILOVER).
 *
 * On a cluster (ARGV[4] given) the grant channel is
 * "redlock:grant:<client id>:<queue key>", in the queue's slot, which is
 * the key's: a script may SPUBLISH only there.
 *
 * Without a queue (N > 1, or min_replicas) the release is published on
 * "redlock:release:<key>", so that waiters wake at once instead of
 * polling; on a cluster on the shard channel ARGV[4] instead
 * ("redlock:release:{<key>}", in the key's slot: SPUBLISH, counted by
 * PUBSUB SHARDNUMSUB), so that a release reaches the key's shard only.  When someone else waits, the key is not deleted but handed
 * off: it holds "redlock:handoff" for a few ms, which SET NX (the releaser
 * looping back, a newcomer) cannot take and a waiter's acquire (below)
 * can: the lock passes to those who waited.  Waiters are counted with
 * PUBSUB NUMSUB, which sees only subscribers of this very channel: a
 * PSUBSCRIBE listener (a monitor, a keyspace-event consumer) waits for
 * nothing, and counting it (PUBLISH's answer does) would park every
 * release as a handoff to nobody.  (model rule release_script) */
#define RELEASE_BODY                                                          \
    "if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end "            \
    "if KEYS[2] then while true do "                                          \
    "local e = redis.call('lpop', KEYS[2]) "                                  \
    "if not e then redis.call('del', KEYS[1]) return 1 end "                  \
    "local t, s, id, tok = string.match(e, '^(%d+) (%d+) (%x+) (.+)$') "      \
    "local tn = tonumber(t) "                                                 \
    "if t and tn >= 1 and tn <= 1099511627776 then local f = 0 "             \
    "if KEYS[3] then f = redis.call('incr', KEYS[3]) end "                    \
    "local ch = 'redlock:grant:' .. id local n = 0 "                          \
    "if ARGV[4] then ch = ch .. ':' .. KEYS[2] end "                          \
    "local m = s .. ' ' .. f .. ' ' .. t .. ' ' .. #KEYS[1] .. ' ' .. KEYS[1] " \
    ".. tok "                                                                 \
    "if redis.REDIS_VERSION_NUM then "                                        \
    "if redis.call('pubsub', 'shardnumsub', ch)[2] > 0 then "                 \
    "n = redis.call('spublish', ch, m) end "                                  \
    "elseif redis.call('pubsub', 'numsub', ch)[2] > 0 then "                  \
    "n = redis.call('publish', ch, m) end "                                   \
    "if n > 0 then "                                                          \
    "redis.call('set', KEYS[1], tok, 'PX', t) return 1 end end end end "      \
    "local sh = ARGV[4] local ch = sh or ('redlock:release:' .. KEYS[1]) "    \
    "local n = redis.call('pubsub', sh and 'shardnumsub' or 'numsub', ch)[2] " \
    "if n > 0 then redis.call(sh and 'spublish' or 'publish', ch, '') "       \
    "end if n > tonumber(ARGV[3] or '0') then redis.call('set', KEYS[1], "    \
    "'redlock:handoff', 'PX', ARGV[2]) else redis.call('del', KEYS[1]) "      \
    "end return 1"
#define RELEASE_SHA "27f57118969233ed52bdc97a2188359c7679e715"
const redlock__script redlock__script_release = {"release", RELEASE_BODY,
                                                 RELEASE_SHA, 1};
const redlock__script redlock__script_release_queued = {
    "release", RELEASE_BODY, RELEASE_SHA, 2};
const redlock__script redlock__script_release_queued_fenced = {
    "release", RELEASE_BODY, RELEASE_SHA, 3};

/* KEYS[1] = lock key, KEYS[2] = fence counter (optional); ARGV[1] = token,
 * ARGV[2] = ttl ms, ARGV[3] = "1" for a waiter (may take a key handed off
 * to waiters).  Answers 0 when another value holds the key; r > 0 when the
 * key was free (or handed off) and is now ours; r < 0 when our token held
 * it already (a re-acquire by the same token): its ttl is raised to ARGV[2]
 * but never lowered, since another handle of this token may count on the
 * longer one.  |r| is the fence number when KEYS[2] is given, else 1.  The
 * sign tells a failed attempt's undo what it may delete: only what it
 * placed.  GET raises WRONGTYPE on a key that is no lock.  The fence
 * counter is checked before anything is written: a counter with a ttl, or
 * one that is no number, is someone's lock under that name (fence numbers
 * would go backwards when it expires, and INCR would change their value):
 * an error, REDLOCK_SERVER.
 * (model rule acquire_script) */
/* Refuses a fence counter KEYS[k] that is someone's lock (see below). */
#define FENCE_CHECK(k)                                                        \
    "if KEYS[" k "] then local f = redis.call('get', KEYS[" k "]) "           \
    "if (f and not string.match(f, '^%-?%d+$')) or "                          \
    "redis.call('pttl', KEYS[" k "]) >= 0 then return redis.error_reply("     \
    "'REDLOCKFENCE ' .. KEYS[" k "] .. ' is no fence counter: it has a ttl "  \
    "or holds no number (a lock?)') end end "
#define ACQUIRE_BODY                                                          \
    FENCE_CHECK("2") \
    "local v = redis.call('get', KEYS[1]) local r = 1 " \
    "if v == ARGV[1] then r = -1 " \
    "local p = redis.call('pttl', KEYS[1]) " \
    "if p >= 0 and p < tonumber(ARGV[2]) then " \
    "redis.call('pexpire', KEYS[1], ARGV[2]) end " \
    "elseif v and not (ARGV[3] == '1' and v == 'redlock:handoff') then " \
    "return 0 " \
    "else redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) end " \
    "if KEYS[2] then return r * redis.call('incr', KEYS[2]) end return r"
#define ACQUIRE_SHA "f191b057642fc673b8d22811e60b56a4d06b6b59"
const redlock__script redlock__script_acquire = {"acquire", ACQUIRE_BODY,
                                                 ACQUIRE_SHA, 1};
/* The same script with the fence counter as KEYS[2]: the counter moves
 * in the same atomic step as the key, so fence numbers follow the order of
 * holders. */
const redlock__script redlock__script_acquire_fenced = {
    "acquire_fenced", ACQUIRE_BODY, ACQUIRE_SHA, 2};

/* KEYS[1] = lock key; ARGV[1] = token, ARGV[2] = ttl ms, ARGV[3] = "1" to
 * only raise the ttl (another handle of this token may count on a longer
 * one).  1 extended (or already long enough); 0 another value holds it; 2
 * no key at all.  PEXPIRE never creates a key, so a lock that expired
 * meanwhile stays free; a 2 from a minority of nodes while a quorum said 1
 * tells redlock__renew which nodes lost the key (restarted, stopped past
 * the ttl) and should get it back.  (model rule extend_script; the model
 * has one ttl and no healing) */
const redlock__script redlock__script_extend = {
    "extend",
    "local v = redis.call('get', KEYS[1]) "
    "if v == ARGV[1] then "
    "if ARGV[3] == '1' then local p = redis.call('pttl', KEYS[1]) "
    "if p < 0 or p >= tonumber(ARGV[2]) then return 1 end end "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end "
    "if v then return 0 end return 2",
    "117172716098049ba8fb5af2e2e92526246d62cd", 1};

/* A waiter's try on one node (queue.c).  KEYS[1] = lock key, KEYS[2] =
 * waiter queue, KEYS[3] = fence counter (optional); ARGV[1] = token,
 * ARGV[2] = ttl ms, ARGV[3] = the waiter's queue entry, ARGV[4] = "push"
 * (the first try of a wait), "check" (a later one: the entry is pushed
 * again if it is gone) or "cancel" (the last: the entry is removed),
 * ARGV[5] = how long an idle queue lives, ms.  Answers as the acquire
 * script (r > 0 placed, r < 0 already ours, |r| the fence number or 1),
 * or, when another token holds the key, 0 (cancelled) or the status
 * "Q <position>", with " <pttl>" added for the first in line, who is the
 * one to watch for a holder that vanished.  A free key is taken, queued
 * or not: it is free only when its holder's ttl ran out or a client
 * outside the queue deleted it, since a release hands it to the first
 * waiter.  Every path that ends the wait removes the entry first, so
 * that it cannot be granted afterwards.  (model/queue.pml: enqueue) */
#define ENQUEUE_BODY                                                          \
    FENCE_CHECK("3") \
    "local v = redis.call('get', KEYS[1]) local r = 1 " \
    "if v and v ~= ARGV[1] then " \
    "if ARGV[4] == 'cancel' then redis.call('lrem', KEYS[2], 0, ARGV[3]) " \
    "return 0 end local pos = false " \
    "if ARGV[4] == 'check' then pos = redis.call('lpos', KEYS[2], ARGV[3]) " \
    "end if not pos then pos = redis.call('rpush', KEYS[2], ARGV[3]) - 1 " \
    "end if pos == 0 or ARGV[4] == 'check' then " \
    "redis.call('pexpire', KEYS[2], ARGV[5]) end " \
    "if pos == 0 then return redis.status_reply('Q 0 ' .. " \
    "redis.call('pttl', KEYS[1])) end " \
    "return redis.status_reply('Q ' .. pos) end " \
    "if ARGV[4] ~= 'push' then redis.call('lrem', KEYS[2], 0, ARGV[3]) end " \
    "if v then r = -1 local p = redis.call('pttl', KEYS[1]) " \
    "if p >= 0 and p < tonumber(ARGV[2]) then " \
    "redis.call('pexpire', KEYS[1], ARGV[2]) end " \
    "else redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) end " \
    "if KEYS[3] then return r * redis.call('incr', KEYS[3]) end return r"
#define ENQUEUE_SHA "8420ba0737708a48e2ff93d33a0e0e3a4e220c7a"
const redlock__script redlock__script_enqueue = {"enqueue", ENQUEUE_BODY,
                                                 ENQUEUE_SHA, 2};
const redlock__script redlock__script_enqueue_fenced = {
    "enqueue", ENQUEUE_BODY, ENQUEUE_SHA, 3};

/* A semaphore permit's try (queue.c, lock.c).  KEYS[1] = the semaphore's
 * queue, KEYS[2..] = its slots; ARGV as for enqueue, with the mode "try"
 * too (no queue at all: a try never waits).  A slot our token holds is
 * ours again (its ttl raised, never lowered), else the first free slot is
 * taken: r > 0 placed in slot r - 1, r < 0 already ours in slot -r - 1;
 * otherwise queued as for a lock ("Q <position>", and for the first in
 * line " <pttl>", the soonest any slot ends), or 0 (try, cancel). */
#define SEM_BODY                                                              \
    "local free = nil local m = ARGV[4] "                                     \
    "for i = 2, #KEYS do local v = redis.call('get', KEYS[i]) "               \
    "if v == ARGV[1] then local p = redis.call('pttl', KEYS[i]) "             \
    "if p >= 0 and p < tonumber(ARGV[2]) then "                               \
    "redis.call('pexpire', KEYS[i], ARGV[2]) end "                            \
    "if m == 'check' or m == 'cancel' then "                                  \
    "redis.call('lrem', KEYS[1], 0, ARGV[3]) end return 1 - i end "           \
    "if not v and not free then free = i end end "                            \
    "if free then if m == 'check' or m == 'cancel' then "                     \
    "redis.call('lrem', KEYS[1], 0, ARGV[3]) end "                            \
    "redis.call('set', KEYS[free], ARGV[1], 'PX', ARGV[2]) return free - 1 "  \
    "end if m == 'try' then return 0 end "                                    \
    "if m == 'cancel' then redis.call('lrem', KEYS[1], 0, ARGV[3]) "          \
    "return 0 end local pos = false "                                         \
    "if m == 'check' then pos = redis.call('lpos', KEYS[1], ARGV[3]) end "    \
    "if not pos then pos = redis.call('rpush', KEYS[1], ARGV[3]) - 1 end "    \
    "if pos == 0 or m == 'check' then "                                       \
    "redis.call('pexpire', KEYS[1], ARGV[5]) end "                            \
    "if pos == 0 then local t = -1 for i = 2, #KEYS do "                      \
    "local p = redis.call('pttl', KEYS[i]) "                                  \
    "if p >= 0 and (t < 0 or p < t) then t = p end end "                      \
    "return redis.status_reply('Q 0 ' .. t) end "                             \
    "return redis.status_reply('Q ' .. pos)"
#define SEM_SHA "ca4e1abd871c98edb916956933ba4e9a330d8d32"
const redlock__script redlock__script_sem = {"semaphore", SEM_BODY, SEM_SHA,
                                             1};

/* KEYS[1] = lock key.  {value or nil, pttl} read in one atomic step.  A
 * value longer than any token (REDLOCK_TOKEN_MAX) is no lock, and is not
 * sent: an error, rather than a reply over reply.c's bound that would
 * fail the connection (redlock_list walks past such keys). */
#define INSPECT_BODY                                                          \
    "local n = redis.call('strlen', KEYS[1]) if n > 65536 then "              \
    "return redis.error_reply('REDLOCKVALUE the key holds ' .. n .. "         \
    "' bytes: no token is that long') end "                                   \
    "return {redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1])}"
const redlock__script redlock__script_inspect = {"inspect", INSPECT_BODY,
                                                 "446ed6f18ddb9ed8d299d9574061935fa6c6ae17", 1};

const redlock__script *const redlock__scripts[] = {
    &redlock__script_release, &redlock__script_extend,
    &redlock__script_acquire, &redlock__script_inspect,
    &redlock__script_enqueue, &redlock__script_sem};
const size_t redlock__nscripts =
    sizeof redlock__scripts / sizeof redlock__scripts[0];
