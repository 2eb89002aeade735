/* The Lua scripts.  Each runs atomically on the server, which is what makes
 * "delete (or extend) only if the value is still our token" safe.  The SHA1
 * digests are fixed here so that EVALSHA needs no round trip first; a test
 * checks them against SCRIPT LOAD on a real server. */
#include "internal.h"

/* KEYS[1] = lock key; ARGV[1] = token, ARGV[2] = handoff ms, ARGV[3] =
 * how many of the listeners are the releasing client's own leftovers (a
 * subscription that outlived its wait by a round trip), 0 if absent.  1
 * released, 0 not ours.  The release is published on
 * "redlock:release:<key>", so that waiters wake at once instead of
 * polling.  When someone else waits, the key is not deleted but handed
 * off: it holds "redlock:handoff" for a few ms, which SET NX (the releaser
 * looping back, a newcomer) cannot take and a waiter's acquire (below)
 * can: the lock passes to those who waited.  Waiters are counted with
 * PUBSUB NUMSUB, which sees only subscribers of this very channel: a
 * PSUBSCRIBE listener (a monitor, a keyspace-event consumer) waits for
 * nothing, and counting it (PUBLISH's answer does) would park every
 * release as a handoff to nobody.  (model rule release_script) */
const redlock__script redlock__script_release = {
    "release",
    "if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end local "
    "ch = 'redlock:release:' .. KEYS[1] local n = redis.call('pubsub', "
    "'numsub', ch)[2] if n > 0 then redis.call('publish', ch, '') end "
    "if n > tonumber(ARGV[3] or '0') then redis.call('set', KEYS[1], "
    "'redlock:handoff', 'PX', ARGV[2]) else redis.call('del', KEYS[1]) "
    "end return 1",
    "620448574facf51bdde98f5c5bb217a970361534", 1};

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
#define ACQUIRE_BODY                                                          \
    "if KEYS[2] then local f = redis.call('get', KEYS[2]) " \
    "if (f and not string.match(f, '^%-?%d+$')) or " \
    "redis.call('pttl', KEYS[2]) >= 0 then return redis.error_reply(" \
    "'REDLOCKFENCE ' .. KEYS[2] .. ' is no fence counter: it has a ttl " \
    "or holds no number (a lock?)') end end " \
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

/* KEYS[1] = lock key.  {value or nil, pttl} read in one atomic step. */
const redlock__script redlock__script_inspect = {
    "inspect",
    "return {redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1])}",
    "756d3a49bbdb0067d28ddc35374118da8c43522e", 1};

const redlock__script *const redlock__scripts[] = {
    &redlock__script_release, &redlock__script_extend,
    &redlock__script_acquire, &redlock__script_inspect};
const size_t redlock__nscripts =
    sizeof redlock__scripts / sizeof redlock__scripts[0];
