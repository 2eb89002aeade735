/* Self-test of the Redis Cluster helper (tests/support/cluster.c).
 *
 * One cluster for the whole file (started by the group setup); the tests
 * run in order and the later ones change it (migration, failover, a
 * killed master), each reading the roles it needs from the struct. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"

static rt_cluster cl;

static int setup(void **state)
{
    (void)state;
    int64_t t0 = rt_now_ms();
    if (rt_cluster_start(&cl) != 0)
        return -1;
    fprintf(stderr, "# cluster started in %lld ms (%s)\n", (long long)(rt_now_ms() - t0),
            cl.url);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rt_cluster_stop(&cl);
    return 0;
}

/* Checks a status or string reply (prefix `want`) and frees it. */
static void expect_reply(redisReply *r, int type, const char *want)
{
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR && type != REDIS_REPLY_ERROR)
        fail_msg("error reply: %s", r->str);
    assert_int_equal(r->type, type);
    if (want != NULL && strncmp(r->str, want, strlen(want)) != 0)
        fail_msg("reply \"%s\", wanted \"%s...\"", r->str, want);
    freeReplyObject(r);
}

static void expect_config(int node, const char *name, const char *value)
{
    redisReply *r = rt_cluster_cmd(&cl, node, "CONFIG GET %s", name);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    if (strcmp(r->element[1]->str, value) != 0)
        fail_msg("node %d: %s is %s, not %s", node, name, r->element[1]->str, value);
    freeReplyObject(r);
}

/* A replica of master m (by master_of[]), or -1. */
static int replica_of(int m)
{
    for (int i = 0; i < RT_CLUSTER_NODES; i++)
        if (rt_cluster_alive(&cl, i) && cl.role[i] == RT_CLUSTER_REPLICA &&
            cl.master_of[i] == m)
            return i;
    return -1;
}

/* Some running master other than `not`. */
static int other_master(int not)
{
    for (int i = 0; i < RT_CLUSTER_NODES; i++)
        if (i != not && rt_cluster_alive(&cl, i) && cl.role[i] == RT_CLUSTER_MASTER)
            return i;
    return -1;
}

static void expect_redirect(redisReply *r, const char *kind, int slot, int node)
{
    char want[64];
    snprintf(want, sizeof want, "%s %d 127.0.0.1:%d", kind, slot, cl.srv[node].port);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_ERROR || strcmp(r->str, want) != 0)
        fail_msg("wanted -%s, got %s", want, r->type == REDIS_REPLY_ERROR ? r->str : "no error");
    freeReplyObject(r);
}

/* Set key on master m and wait for one replica to have it. */
static void set_replicated(int m, const char *key, const char *value)
{
    expect_reply(rt_cluster_cmd(&cl, m, "SET %s %s", key, value), REDIS_REPLY_STATUS, "OK");
    redisReply *r = rt_cluster_cmd(&cl, m, "WAIT 1 2000");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
}

static void test_started(void **state)
{
    (void)state;
    char want[256];
    int n = snprintf(want, sizeof want, "%s://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
                     cl.tls ? "rediss+cluster" : "redis+cluster", cl.srv[0].port,
                     cl.srv[1].port, cl.srv[2].port);
    assert_true(n > 0 && (size_t)n < sizeof want);
    assert_string_equal(cl.url, want);
    assert_string_equal(rt_cluster_scheme(), cl.tls ? "rediss+cluster" : "redis+cluster");

    int replicas_of[RT_CLUSTER_NODES] = {0};
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        assert_true(rt_cluster_alive(&cl, i));
        assert_int_equal(strlen(cl.id[i]), 40);
        assert_true(cl.bus_port[i] > 0 && cl.bus_port[i] != cl.srv[i].port);
        assert_int_equal(rt_cluster_index_of_id(&cl, cl.id[i], 40), i);
        assert_int_equal(rt_cluster_index_of_port(&cl, cl.srv[i].port), i);
        for (int k = 0; k < i; k++) {
            assert_string_not_equal(cl.id[i], cl.id[k]);
            assert_int_not_equal(cl.bus_port[i], cl.bus_port[k]);
        }
        if (i < RT_CLUSTER_MASTERS) {
            assert_int_equal(cl.role[i], RT_CLUSTER_MASTER);
            assert_int_equal(cl.master_of[i], -1);
        } else {
            assert_int_equal(cl.role[i], RT_CLUSTER_REPLICA);
            assert_in_range(cl.master_of[i], 0, RT_CLUSTER_MASTERS - 1);
            replicas_of[cl.master_of[i]]++;
        }
        /* Its own id, as the node says. */
        redisReply *r = rt_cluster_cmd(&cl, i, "CLUSTER MYID");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, cl.id[i]);
        freeReplyObject(r);
        expect_config(i, "cluster-node-timeout", "1000");
        expect_config(i, "cluster-enabled", "yes");
        if (cl.tls) { /* TLS only, on the bus and for replication too */
            expect_config(i, "port", "0");
            expect_config(i, "tls-cluster", "yes");
            expect_config(i, "tls-replication", "yes");
        } else {
            expect_config(i, "tls-port", "0");
        }
    }
    for (int m = 0; m < RT_CLUSTER_MASTERS; m++)
        assert_int_equal(replicas_of[m], 1);

    /* The refresh tells the same. */
    int role[RT_CLUSTER_NODES], master_of[RT_CLUSTER_NODES];
    memcpy(role, cl.role, sizeof role);
    memcpy(master_of, cl.master_of, sizeof master_of);
    assert_int_equal(rt_cluster_refresh(&cl), 0);
    assert_memory_equal(role, cl.role, sizeof role);
    assert_memory_equal(master_of, cl.master_of, sizeof master_of);

    /* Every node maps all slots, alike, to the three masters. */
    short *ref = malloc(RT_CLUSTER_SLOTS * sizeof *ref);
    short *map = malloc(RT_CLUSTER_SLOTS * sizeof *map);
    assert_non_null(ref);
    assert_non_null(map);
    assert_int_equal(rt_cluster_slot_map(&cl, 0, ref), 0);
    int served[RT_CLUSTER_NODES] = {0};
    for (int s = 0; s < RT_CLUSTER_SLOTS; s++) {
        assert_in_range(ref[s], 0, RT_CLUSTER_MASTERS - 1);
        served[ref[s]]++;
    }
    for (int m = 0; m < RT_CLUSTER_MASTERS; m++)
        assert_true(served[m] > 5000);
    for (int i = 1; i < RT_CLUSTER_NODES; i++) {
        assert_int_equal(rt_cluster_slot_map(&cl, i, map), 0);
        assert_memory_equal(ref, map, RT_CLUSTER_SLOTS * sizeof *map);
    }
    assert_int_equal(rt_cluster_slot_owner(&cl, 0), ref[0]);
    assert_int_equal(rt_cluster_slot_owner(&cl, 16383), ref[16383]);
    assert_int_equal(rt_cluster_slot_owner(&cl, -1), -1);
    assert_int_equal(rt_cluster_slot_owner(&cl, 16384), -1);
    free(ref);
    free(map);

    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        redisReply *r = rt_cluster_cmd(&cl, i, "CLUSTER INFO");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_non_null(strstr(r->str, "cluster_state:ok"));
        assert_non_null(strstr(r->str, "cluster_slots_assigned:16384"));
        assert_non_null(strstr(r->str, "cluster_known_nodes:6"));
        assert_non_null(strstr(r->str, "cluster_size:3"));
        freeReplyObject(r);
    }
    assert_int_equal(rt_cluster_wait_ok(&cl, 5000), 0);
    assert_int_equal(rt_cluster_wait_agree(&cl, 5000), 0);
    /* A cached connection the node closed is replaced, the command sent
     * again: the next command after our own connection is killed works. */
    redisReply *id = rt_cluster_cmd(&cl, 0, "CLIENT ID");
    assert_non_null(id);
    assert_int_equal(id->type, REDIS_REPLY_INTEGER);
    redisReply *k = rt_cluster_cmd(&cl, 0, "CLIENT KILL ID %lld SKIPME no", id->integer);
    freeReplyObject(id);
    if (k != NULL)
        freeReplyObject(k);
    expect_reply(rt_cluster_cmd(&cl, 0, "PING"), REDIS_REPLY_STATUS, "PONG");

    assert_null(rt_cluster_cmd(&cl, -1, "PING"));
    assert_null(rt_cluster_cmd(&cl, RT_CLUSTER_NODES, "PING"));
}

static void test_key_via_owner(void **state)
{
    (void)state;
    for (int m = 0; m < RT_CLUSTER_MASTERS; m++) {
        char key[64];
        int slot = rt_cluster_key_on(&cl, m, "owner:", key, sizeof key);
        assert_in_range(slot, 0, RT_CLUSTER_SLOTS - 1);
        assert_int_equal(strncmp(key, "owner:", 6), 0);
        assert_int_equal(rt_cluster_hash_slot(key, strlen(key)), slot);
        assert_int_equal(rt_cluster_keyslot(&cl, key), slot);
        assert_int_equal(rt_cluster_slot_owner(&cl, slot), m);

        set_replicated(m, key, "v");
        expect_reply(rt_cluster_cmd(&cl, m, "GET %s", key), REDIS_REPLY_STRING, "v");
        /* Any other master redirects to m. */
        int o = other_master(m);
        assert_true(o >= 0);
        expect_redirect(rt_cluster_cmd(&cl, o, "GET %s", key), "MOVED", slot, m);
        /* Its replica has it (READONLY on the cached connection). */
        int r = replica_of(m);
        assert_true(r >= 0);
        expect_reply(rt_cluster_cmd(&cl, r, "READONLY"), REDIS_REPLY_STATUS, "OK");
        expect_reply(rt_cluster_cmd(&cl, r, "GET %s", key), REDIS_REPLY_STRING, "v");
        expect_reply(rt_cluster_cmd(&cl, r, "READWRITE"), REDIS_REPLY_STATUS, "OK");
        expect_redirect(rt_cluster_cmd(&cl, r, "GET %s", key), "MOVED", slot, m);
    }
    /* Too small a buffer, a node that serves nothing. */
    char tiny[4];
    assert_int_equal(rt_cluster_key_on(&cl, 0, "owner:", tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "");
    char key[64];
    assert_int_equal(rt_cluster_key_on(&cl, 3, "owner:", key, sizeof key), -1);
    assert_int_equal(rt_cluster_key_on(&cl, 7, "owner:", key, sizeof key), -1);
}

static void check_slot(const char *key, size_t len)
{
    int local = rt_cluster_hash_slot(key, len);
    redisReply *r = rt_cluster_cmd(&cl, 0, "CLUSTER KEYSLOT %b", key, len);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    if (r->integer != local)
        fail_msg("key of %zu bytes: CLUSTER KEYSLOT %lld, local %d", len, r->integer, local);
    freeReplyObject(r);
}

static void test_crc16(void **state)
{
    (void)state;
    /* The CRC16-XMODEM check value, and the cluster spec's examples. */
    assert_int_equal(rt_cluster_hash_slot("123456789", 9), 0x31C3 & 16383);
    int a = rt_cluster_hash_slot("{user1000}.following", 20);
    assert_int_equal(a, rt_cluster_hash_slot("{user1000}.followers", 20));
    assert_int_equal(a, rt_cluster_hash_slot("user1000", 8));
    assert_int_equal(rt_cluster_hash_slot("foo{{bar}}zap", 13), rt_cluster_hash_slot("{bar", 4));
    assert_int_equal(rt_cluster_hash_slot("foo{bar}{zap}", 13), rt_cluster_hash_slot("bar", 3));
    assert_int_equal(rt_cluster_keyslot(&cl, "{user1000}.following"), a);

    static const struct {
        const char *key;
        size_t len;
    } keys[] = {
        {"{user1000}.following", 20},
        {"{user1000}.followers", 20},
        {"foo{}{bar}", 10},
        {"foo{{bar}}zap", 13},
        {"foo{bar}{zap}", 13},
        {"{}", 2},
        {"{}x", 3},
        {"x{}", 3},
        {"", 0},
        {"{", 1},
        {"}", 1},
        {"}{", 2},
        {"a}b{c}", 6},
        {"a{b", 3},
        {"{{}}", 4},
        {"{a}", 3},
        {"\0\xff{\0}\x80", 6},
        {"\xff\xfe\xfd", 3},
        {"x{\0\0}y", 6},
        {"123456789", 9},
        {"lock:{resource}", 15},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        check_slot(keys[i].key, keys[i].len);

    /* Random binary keys, some with braces. */
    unsigned seed = 12345;
    for (int i = 0; i < 300; i++) {
        char key[24];
        size_t len = (size_t)(rand_r(&seed) % (int)sizeof key);
        for (size_t k = 0; k < len; k++) {
            int r = rand_r(&seed) % 8;
            key[k] = r == 0 ? '{' : r == 1 ? '}' : (char)(rand_r(&seed) & 0xff);
        }
        check_slot(key, len);
    }
}

static void test_migrate(void **state)
{
    (void)state;
    int from = 1;
    int to = other_master(from);
    assert_int_equal(cl.role[from], RT_CLUSTER_MASTER);
    assert_true(to >= 0);
    char base[32], a[48], b[48], missing[48];
    int slot = rt_cluster_key_on(&cl, from, "mig:", base, sizeof base);
    assert_true(slot >= 0);
    snprintf(a, sizeof a, "{%s}.a", base);
    snprintf(b, sizeof b, "{%s}.b", base);
    snprintf(missing, sizeof missing, "{%s}.missing", base);
    assert_int_equal(rt_cluster_hash_slot(a, strlen(a)), slot);
    expect_reply(rt_cluster_cmd(&cl, from, "SET %s 1", a), REDIS_REPLY_STATUS, "OK");
    expect_reply(rt_cluster_cmd(&cl, from, "SET %s 2", b), REDIS_REPLY_STATUS, "OK");

    int64_t t0 = rt_now_ms();
    assert_int_equal(rt_cluster_migrate_start(&cl, slot, from, to), 0);
    /* The keys still there are served; a missing one is asked of `to`. */
    expect_reply(rt_cluster_cmd(&cl, from, "GET %s", a), REDIS_REPLY_STRING, "1");
    expect_redirect(rt_cluster_cmd(&cl, from, "GET %s", missing), "ASK", slot, to);
    expect_redirect(rt_cluster_cmd(&cl, to, "GET %s", a), "MOVED", slot, from);

    assert_int_equal(rt_cluster_migrate_keys(&cl, slot, from, to), 2);
    assert_int_equal(rt_cluster_migrate_keys(&cl, slot, from, to), 0); /* none left */
    expect_redirect(rt_cluster_cmd(&cl, from, "GET %s", a), "ASK", slot, to);
    expect_reply(rt_cluster_cmd(&cl, to, "ASKING"), REDIS_REPLY_STATUS, "OK");
    expect_reply(rt_cluster_cmd(&cl, to, "GET %s", a), REDIS_REPLY_STRING, "1");
    assert_int_equal(rt_cluster_slot_owner(&cl, slot), from); /* not yet moved */

    assert_int_equal(rt_cluster_migrate_finish(&cl, slot, to), 0);
    int64_t took = rt_now_ms() - t0;
    fprintf(stderr, "# slot %d migrated %d -> %d in %lld ms\n", slot, from, to, (long long)took);
    assert_int_equal(rt_cluster_slot_owner(&cl, slot), to);
    short *map = malloc(RT_CLUSTER_SLOTS * sizeof *map);
    assert_non_null(map);
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        assert_int_equal(rt_cluster_slot_map(&cl, i, map), 0);
        assert_int_equal(map[slot], to);
    }
    free(map);
    expect_reply(rt_cluster_cmd(&cl, to, "GET %s", a), REDIS_REPLY_STRING, "1");
    expect_reply(rt_cluster_cmd(&cl, to, "GET %s", b), REDIS_REPLY_STRING, "2");
    expect_redirect(rt_cluster_cmd(&cl, from, "GET %s", a), "MOVED", slot, to);
    char key[32];
    assert_int_equal(rt_cluster_key_on(&cl, to, "mig:", key, sizeof key) >= 0, 1);

    /* And back, in one call (an empty slot too). */
    assert_int_equal(rt_cluster_migrate(&cl, slot, to, from), 0);
    assert_int_equal(rt_cluster_slot_owner(&cl, slot), from);
    expect_reply(rt_cluster_cmd(&cl, from, "GET %s", b), REDIS_REPLY_STRING, "2");
    assert_int_equal(rt_cluster_wait_ok(&cl, 10000), 0);

    /* Bad arguments. */
    assert_int_equal(rt_cluster_migrate_start(&cl, slot, from, from), -1);
    assert_int_equal(rt_cluster_migrate_start(&cl, 16384, from, to), -1);
    assert_int_equal(rt_cluster_migrate_keys(&cl, slot, -1, to), -1);
}

static void test_failover(void **state)
{
    (void)state;
    int r = 3;
    int m = cl.master_of[r];
    assert_int_equal(cl.role[r], RT_CLUSTER_REPLICA);
    char key[32];
    int slot = rt_cluster_key_on(&cl, m, "fo:", key, sizeof key);
    assert_true(slot >= 0);
    set_replicated(m, key, "before");

    int64_t t0 = rt_now_ms();
    assert_int_equal(rt_cluster_failover(&cl, r, NULL, 15000), 0);
    fprintf(stderr, "# failover of %d to %d in %lld ms\n", m, r,
            (long long)(rt_now_ms() - t0));
    assert_int_equal(cl.role[r], RT_CLUSTER_MASTER);
    assert_int_equal(cl.master_of[r], -1);
    assert_int_equal(cl.role[m], RT_CLUSTER_REPLICA);
    assert_int_equal(cl.master_of[m], r);
    assert_int_equal(rt_cluster_slot_owner(&cl, slot), r);
    expect_reply(rt_cluster_cmd(&cl, r, "GET %s", key), REDIS_REPLY_STRING, "before");
    expect_redirect(rt_cluster_cmd(&cl, m, "GET %s", key), "MOVED", slot, r);
    char other[32];
    assert_int_equal(rt_cluster_key_on(&cl, r, "fo:", other, sizeof other) >= 0, 1);
    assert_int_equal(rt_cluster_key_on(&cl, m, "fo:", other, sizeof other), -1);

    /* A node that is not a replica refuses. */
    assert_int_equal(rt_cluster_failover(&cl, r, NULL, 1000), -1);
}

static void test_kill_promotes(void **state)
{
    (void)state;
    /* The last of srv[0..2] still a master (the failover moved another). */
    int m = RT_CLUSTER_MASTERS - 1;
    while (m >= 0 && cl.role[m] != RT_CLUSTER_MASTER)
        m--;
    assert_true(m >= 0);
    int r = replica_of(m);
    assert_true(r >= 0);
    char key[32];
    int slot = rt_cluster_key_on(&cl, m, "kill:", key, sizeof key);
    assert_true(slot >= 0);
    set_replicated(m, key, "kept");

    pid_t pid = cl.srv[m].pid;
    rt_cluster_kill(&cl, m);
    assert_false(rt_cluster_alive(&cl, m));
    assert_int_equal(cl.role[m], RT_CLUSTER_DOWN);
    assert_int_equal(cl.master_of[r], m); /* as it was at the kill */
    errno = 0;
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_null(rt_cluster_cmd(&cl, m, "PING"));

    int64_t t0 = rt_now_ms();
    assert_int_equal(rt_cluster_wait_promoted(&cl, m, 20000), r);
    fprintf(stderr, "# killed master %d replaced by %d in %lld ms\n", m, r,
            (long long)(rt_now_ms() - t0));
    assert_int_equal(cl.role[r], RT_CLUSTER_MASTER);
    assert_int_equal(rt_cluster_slot_owner(&cl, slot), r);
    expect_reply(rt_cluster_cmd(&cl, r, "GET %s", key), REDIS_REPLY_STRING, "kept");
    assert_int_equal(rt_cluster_wait_promoted(&cl, m, 100), -1); /* no replica left */

    /* It comes back as a replica of its successor, same id. */
    t0 = rt_now_ms();
    assert_int_equal(rt_cluster_restart(&cl, m), 0);
    assert_int_equal(rt_cluster_wait_ok(&cl, 20000), 0);
    fprintf(stderr, "# restarted %d rejoined in %lld ms\n", m, (long long)(rt_now_ms() - t0));
    assert_int_equal(cl.role[m], RT_CLUSTER_REPLICA);
    assert_int_equal(cl.master_of[m], r);
    redisReply *id = rt_cluster_cmd(&cl, m, "CLUSTER MYID");
    assert_non_null(id);
    assert_string_equal(id->str, cl.id[m]);
    freeReplyObject(id);
}

static void test_stop(void **state)
{
    (void)state;
    pid_t pids[RT_CLUSTER_NODES];
    char dirs[RT_CLUSTER_NODES][64];
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        pids[i] = cl.srv[i].pid;
        snprintf(dirs[i], sizeof dirs[i], "%s", cl.srv[i].dir);
        assert_true(pids[i] > 0);
    }
    rt_cluster_stop(&cl);
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        errno = 0;
        assert_int_equal(kill(pids[i], 0), -1);
        assert_int_equal(errno, ESRCH);
        assert_int_not_equal(access(dirs[i], F_OK), 0);
        assert_int_equal(cl.role[i], RT_CLUSTER_DOWN);
        assert_null(rt_cluster_cmd(&cl, i, "PING"));
    }
    rt_cluster_stop(&cl); /* idempotent */
    rt_cluster zero;
    memset(&zero, 0, sizeof zero);
    rt_cluster_stop(&zero);
}

/* A cluster with a password: redis-cli, replication (masterauth), the
 * helpers and MIGRATE (AUTH) all use it.  Runs after test_stop. */
static void test_password(void **state)
{
    (void)state;
    rt_cluster p;
    const char *const args[] = {"--requirepass", "clu$ter pw", NULL};
    int64_t t0 = rt_now_ms();
    assert_int_equal(rt_cluster_start_args(&p, args), 0);
    fprintf(stderr, "# cluster with a password started in %lld ms\n",
            (long long)(rt_now_ms() - t0));
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        assert_string_equal(p.srv[i].password, "clu$ter pw");
        expect_reply(rt_cmd_auth(&p.srv[i], NULL, "PING"), REDIS_REPLY_ERROR, "NOAUTH");
        expect_reply(rt_cluster_cmd(&p, i, "PING"), REDIS_REPLY_STATUS, "PONG");
    }
    char key[32];
    int slot = rt_cluster_key_on(&p, 0, "pw:", key, sizeof key);
    assert_true(slot >= 0);
    expect_reply(rt_cluster_cmd(&p, 0, "SET %s x", key), REDIS_REPLY_STATUS, "OK");
    assert_int_equal(rt_cluster_migrate(&p, slot, 0, 1), 0);
    assert_int_equal(rt_cluster_slot_owner(&p, slot), 1);
    expect_reply(rt_cluster_cmd(&p, 1, "GET %s", key), REDIS_REPLY_STRING, "x");

    /* Too many extra arguments: refused before anything starts. */
    const char *const many[] = {"--maxclients", "100", "--maxclients", "100", "--maxclients",
                                "100", "--maxclients", "100", "--maxclients", "100",
                                "--maxclients", "100", "--maxclients", "100", NULL};
    rt_cluster q;
    assert_int_equal(rt_cluster_start_args(&q, many), -1);
    assert_int_equal(q.srv[0].pid, 0);
    rt_cluster_stop(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_started),   cmocka_unit_test(test_key_via_owner),
        cmocka_unit_test(test_crc16),     cmocka_unit_test(test_migrate),
        cmocka_unit_test(test_failover),  cmocka_unit_test(test_kill_promotes),
        cmocka_unit_test(test_stop),      cmocka_unit_test(test_password),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
