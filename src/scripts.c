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
 * polling.  When someone else listens, the key is not deleted but handed
 * off: it holds "redlock:handoff" for a few ms, which SET NX (the releaser
 * looping back, a newcomer) cannot take and a waiter's acquire (below)
 * can: the lock passes to those who waited. */
const redlock__script redlock__script_release = {
    "release",
    "if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end "
    "if redis.call('publish', 'redlock:release:' .. KEYS[1], '') > "
    "tonumber(ARGV[3] or '0') then "
    "redis.call('set', KEYS[1], 'redlock:handoff', 'PX', ARGV[2]) "
    "else redis.call('del', KEYS[1]) end return 1",
    "768d13877382233ffe7abc7f1452452999137bdd", 1};

/* KEYS[1] = lock key, KEYS[2] = fence counter (optional); ARGV[1] = token,
 * ARGV[2] = ttl ms.  A waiter's acquire: takes a free key or one handed
 * off.  1 (or the fence number) taken, 0 held. */
const redlock__script redlock__script_acquire_waiter = {
    "acquire_waiter",
    "local v = redis.call('get', KEYS[1]) "
    "if v and v ~= 'redlock:handoff' then return 0 end "
    "redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "if KEYS[2] then return redis.call('incr', KEYS[2]) end return 1",
    "99fc4c0d8feb37076cbd69dabe47377aff880dc0", 1};
/* The same script with the fence counter as KEYS[2]. */
const redlock__script redlock__script_acquire_waiter_fenced = {
    "acquire_waiter_fenced",
    "local v = redis.call('get', KEYS[1]) "
    "if v and v ~= 'redlock:handoff' then return 0 end "
    "redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "if KEYS[2] then return redis.call('incr', KEYS[2]) end return 1",
    "99fc4c0d8feb37076cbd69dabe47377aff880dc0", 2};

/* KEYS[1] = lock key; ARGV[1] = token, ARGV[2] = ttl ms.  PEXPIRE never
 * creates a key, so a lock that expired meanwhile stays free. */
const redlock__script redlock__script_extend = {
    "extend",
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0",
    "e95849a1757fe494b3c802dc09b717d0c074eb21", 1};

/* KEYS[1] = lock key, KEYS[2] = fence counter; ARGV[1] = token, ARGV[2] =
 * ttl ms.  The counter moves only when the lock is taken, in the same
 * atomic step, so fence numbers follow the order of holders. */
const redlock__script redlock__script_acquire_fenced = {
    "acquire_fenced",
    "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
    "return redis.call('incr', KEYS[2]) end return 0",
    "ad5dd071890b0f55e0cda86cb50af46797a0b081", 2};

/* KEYS[1] = lock key.  {value or nil, pttl} read in one atomic step. */
const redlock__script redlock__script_inspect = {
    "inspect",
    "return {redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1])}",
    "756d3a49bbdb0067d28ddc35374118da8c43522e", 1};

const redlock__script *const redlock__scripts[] = {
    &redlock__script_release, &redlock__script_extend,
    &redlock__script_acquire_fenced, &redlock__script_inspect,
    &redlock__script_acquire_waiter};
const size_t redlock__nscripts =
    sizeof redlock__scripts / sizeof redlock__scripts[0];
