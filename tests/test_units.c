/* Pure units: interval and validity arithmetic, the deadline heap, RESP
 * formatting, the status table, argument checks that need no server, and
 * Redis Cluster key slots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void renew_interval(void **state)
{
    (void)state;
    /* ttl/3 when above the floor */
    assert_int_equal(redlock__renew_interval_ms(30000, 5000), 10000);
    /* the floor lifts it... */
    assert_int_equal(redlock__renew_interval_ms(9000, 5000), 4500);
    assert_int_equal(redlock__renew_interval_ms(12000, 5000), 5000);
    /* ...but never above ttl/2 */
    assert_int_equal(redlock__renew_interval_ms(6000, 5000), 3000);
    assert_int_equal(redlock__renew_interval_ms(600, 5000), 300);
    assert_int_equal(redlock__renew_interval_ms(600, 50), 200);
    /* tiny ttls still give a positive interval */
    assert_int_equal(redlock__renew_interval_ms(1, 0), 1);
    assert_int_equal(redlock__renew_interval_ms(3, 0), 1);
    assert_int_equal(redlock__renew_interval_ms(REDLOCK_TTL_MAX, 5000),
                     REDLOCK_TTL_MAX / 3);
}

static void validity(void **state)
{
    (void)state;
    /* ttl * 0.01 + 2 ms, rounded up */
    assert_int_equal(redlock__drift_ms(10000, 0.01), 102);
    assert_int_equal(redlock__drift_ms(150, 0.01), 4);
    assert_int_equal(redlock__drift_ms(1000, 0.0), 2);
    assert_int_equal(redlock__validity_end_ms(5000, 10000, 0.01),
                     5000 + 10000 - 102);
    /* a tiny ttl has no validity at all */
    assert_true(redlock__validity_end_ms(100, 2, 0.01) <= 100);
    /* the largest ttl does not overflow */
    assert_true(redlock__validity_end_ms(INT64_C(1) << 50, REDLOCK_TTL_MAX,
                                         0.49) > (INT64_C(1) << 50));
}

static void jitter(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++) {
        int64_t j = redlock__jitter_ms(100);
        assert_true(j >= 50 && j <= 150);
    }
    assert_int_equal(redlock__jitter_ms(0), 1);
    assert_int_equal(redlock__jitter_ms(1), 1);
}

static void heap_order(void **state)
{
    (void)state;
    enum { N = 500 };
    redlock_lock *locks = calloc(N, sizeof *locks);
    redlock__heap h = {0};
    assert_non_null(locks);
    srand(42);
    for (int i = 0; i < N; i++) {
        locks[i].wd_due_ms = rand() % 1000;
        locks[i].wd_index = -1;
        assert_int_equal(redlock__heap_push(&h, &locks[i]), 0);
    }
    /* remove every third from the middle, re-key every fifth */
    for (int i = 0; i < N; i += 3)
        redlock__heap_remove(&h, &locks[i]);
    for (int i = 1; i < N; i += 5) {
        if (locks[i].wd_index < 0)
            continue;
        /* re-keyed the way the watchdog does it: out, new due, back in */
        redlock__heap_remove(&h, &locks[i]);
        locks[i].wd_due_ms = rand() % 1000;
        assert_int_equal(redlock__heap_push(&h, &locks[i]), 0);
    }
    redlock__heap_remove(&h, &locks[0]); /* not in it: harmless */
    int64_t last = -1;
    int count = 0;
    redlock_lock *top;
    while ((top = redlock__heap_top(&h))) {
        assert_true(top->wd_due_ms >= last);
        last = top->wd_due_ms;
        redlock__heap_remove(&h, top);
        assert_int_equal(top->wd_index, -1);
        count++;
    }
    assert_int_equal(count, N - (N + 2) / 3);
    redlock__heap_free(&h);
    free(locks);
}

static void resp_format(void **state)
{
    (void)state;
    redlock__buf b = {0};
    const char *argv[] = {"SET", "k\r\n y", "", "%s%n"};
    size_t len[] = {3, 5, 0, 4};
    assert_int_equal(redlock__resp_append(&b, 4, argv, len), 0);
    const char want[] = "*4\r\n$3\r\nSET\r\n$5\r\nk\r\n y\r\n$0\r\n\r\n"
                        "$4\r\n%s%n\r\n";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, b.len);
    /* appends accumulate, and a large argument grows the buffer */
    size_t big = 1 << 20;
    char *blob = malloc(big);
    assert_non_null(blob);
    memset(blob, 'x', big);
    const char *a2[] = {blob};
    assert_int_equal(redlock__resp_append(&b, 1, a2, &big), 0);
    assert_int_equal(b.len, sizeof want - 1 + 4 + 10 + big + 2);
    free(blob);
    redlock__buf_free(&b);
    assert_null(b.data);
}

static void status_table(void **state)
{
    (void)state;
    /* Every status has its own non-empty message; others are "unknown". */
    const redlock_status all[] = {
#define STATUS_(name, value, msg) REDLOCK_##name,
        REDLOCK_STATUS_MAP(STATUS_)
#undef STATUS_
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        assert_int_equal(all[i], (int)i);
        const char *m = redlock_strerror(all[i]);
        assert_true(strlen(m) > 0);
        assert_string_not_equal(m, "unknown status");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(m, redlock_strerror(all[j]));
    }
    assert_string_equal(redlock_strerror((redlock_status)99),
                        "unknown status");
    assert_string_equal(redlock_version(), REDLOCK_VERSION_STRING);
    assert_int_equal(REDLOCK_VERSION_NUMBER,
                     (REDLOCK_VERSION_MAJOR << 16) |
                         (REDLOCK_VERSION_MINOR << 8) | REDLOCK_VERSION_PATCH);
}

static void expect_invalid(const redlock_options *o, const char *needle)
{
    const char *url = "redis://127.0.0.1:1";
    redlock_status st = REDLOCK_OK;
    assert_null(redlock_connect(&url, 1, o, &st));
    assert_int_equal(st, REDLOCK_INVALID);
    assert_non_null(strstr(redlock_last_error(), needle));
}

static void bad_options(void **state)
{
    (void)state;
    redlock_options o;
    redlock_options_init(&o);
    assert_int_equal(o.connect_timeout_ms, 2000);
    assert_int_equal(o.io_timeout_ms, 2000);
    assert_int_equal(o.node_timeout_ms, 0);
    assert_int_equal(o.retry_delay_ms, 100);
    assert_true(o.drift_factor == 0.01);
    assert_int_equal(o.renew_floor_ms, 5000);
    assert_int_equal(o.max_hold_ms, 0);
    assert_int_equal(o.fencing, 0);
    assert_int_equal(o.min_replicas, 0);
    assert_null(o.on_lost);
    redlock_options_init(NULL); /* harmless */

#define BAD(field, value, needle)                                              \
    do {                                                                       \
        redlock_options_init(&o);                                              \
        o.field = value;                                                       \
        expect_invalid(&o, needle);                                            \
    } while (0)
    BAD(connect_timeout_ms, 0, "connect_timeout_ms");
    BAD(connect_timeout_ms, -5, "connect_timeout_ms");
    BAD(io_timeout_ms, 0, "io_timeout_ms");
    BAD(node_timeout_ms, -1, "node_timeout_ms");
    BAD(retry_delay_ms, 0, "retry_delay_ms");
    BAD(drift_factor, -0.1, "drift_factor");
    BAD(drift_factor, 0.5, "drift_factor");
    BAD(renew_floor_ms, -1, "renew_floor_ms");
    BAD(max_hold_ms, -1, "max_hold_ms");
    BAD(min_replicas, -1, "min_replicas");
#undef BAD

    /* fencing with more than one node */
    redlock_options_init(&o);
    o.fencing = 1;
    const char *urls[] = {"redis://127.0.0.1:1", "redis://127.0.0.1:2",
                          "redis://127.0.0.1:3"};
    redlock_status st;
    assert_null(redlock_connect(urls, 3, &o, &st));
    assert_int_equal(st, REDLOCK_INVALID);
    assert_non_null(strstr(redlock_last_error(), "fencing"));

    /* node counts and NULLs */
    assert_null(redlock_connect(NULL, 1, NULL, &st));
    assert_int_equal(st, REDLOCK_INVALID);
    assert_null(redlock_connect(urls, 0, NULL, &st));
    assert_int_equal(st, REDLOCK_INVALID);
    assert_null(redlock_connect(urls, REDLOCK_MAX_NODES + 1, NULL, &st));
    assert_int_equal(st, REDLOCK_INVALID);
    const char *with_null[] = {"redis://127.0.0.1:1", NULL};
    assert_null(redlock_connect(with_null, 2, NULL, &st));
    assert_int_equal(st, REDLOCK_INVALID);
    assert_null(redlock_connect(urls, 0, NULL, NULL)); /* status optional */
    /* a malformed URL says which part, and never the password */
    const char *bad = "redis://u:s3cret@host:0";
    assert_null(redlock_connect(&bad, 1, NULL, &st));
    assert_int_equal(st, REDLOCK_INVALID);
    assert_non_null(strstr(redlock_last_error(), "port"));
    assert_null(strstr(redlock_last_error(), "s3cret"));
    /* one server (or cluster, or Sentinel group) listed twice would vote
     * twice: refused before any connection, whatever the db */
    const char *dups[][3] = {
        {"redis://127.0.0.1:1", "redis://127.0.0.1:2/1", "redis://127.0.0.1:1/3"},
        {"redis://LocalHost:7", "redis://127.0.0.1:8", "redis://localhost:7"},
        {"unix:///tmp/a.sock", "unix:///tmp/a.sock?db=2", "redis://h:1"},
        {"redis+cluster://a:1,b:2", "redis://b:2", "redis+cluster://c:3,b:2"},
        {"redis+sentinel://s:1,t:2/m", "redis://x:1", "redis+sentinel://t:2/m"},
        {"redis+cluster://a:1,b:2", "redis://c:3", "redis://b:2"},
    };
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        assert_null(redlock_connect(dups[i], 3, NULL, &st));
        assert_int_equal(st, REDLOCK_INVALID);
        assert_non_null(strstr(redlock_last_error(), "the same server"));
    }
    /* a Cluster URL whose seeds do not answer: REDLOCK_IO, naming the
     * seed that failed, never the password */
    const char *cluster[] = {"redis+cluster://u:s3cret@127.0.0.1:1,[::1]:2/0",
                             "rediss+cluster://127.0.0.1:1"};
    for (size_t i = 0; i < 2; i++) {
        assert_null(redlock_connect(&cluster[i], 1, NULL, &st));
        assert_int_equal(st, REDLOCK_IO);
        assert_non_null(strstr(redlock_last_error(), "cannot read the slot map"));
        assert_null(strstr(redlock_last_error(), "s3cret"));
    }
}

static void null_handles(void **state)
{
    (void)state;
    redlock_lock *l = (redlock_lock *)&l; /* must be reset to NULL */
    assert_int_equal(redlock_acquire(NULL, "k", 1000, 0, &l), REDLOCK_INVALID);
    assert_null(l);
    assert_int_equal(redlock_acquire_as(NULL, "k", "t", 1000, 0, &l),
                     REDLOCK_INVALID);
    assert_int_equal(redlock_adopt(NULL, "k", "t", &l), REDLOCK_INVALID);
    assert_int_equal(redlock_inspect(NULL, "k", NULL, 0, NULL),
                     REDLOCK_INVALID);
    assert_int_equal(redlock_keepalive(NULL), REDLOCK_INVALID);
    assert_int_equal(redlock_extend(NULL, 1000), REDLOCK_INVALID);
    assert_int_equal(redlock_release(NULL), REDLOCK_INVALID);
    assert_non_null(strstr(redlock_last_error(), "NULL"));
    redlock_detach(NULL);
    redlock_client_free(NULL);
    assert_int_equal(redlock_held(NULL), 0);
    assert_int_equal(redlock_validity_ms(NULL), 0);
    assert_null(redlock_token(NULL));
    assert_null(redlock_key(NULL));
    assert_int_equal(redlock_fence(NULL), 0);
}

/* ---- slot.c: Redis Cluster key slots ------------------------------------ */

/* The slots below were read from a redis-server 7 (cluster-enabled, no
 * cluster formed) with CLUSTER KEYSLOT: what the server says is the spec. */
static const struct {
    const char *key;
    size_t len;
    unsigned slot;
    int tagged;
} slot_cases[] = {
#define K(s) s, sizeof(s) - 1
    {K("123456789"), 12739, 0}, /* the CRC's check value 0x31C3 */
    {K("foo"), 12182, 0},
    {K("bar"), 5061, 0},
    {K("zap"), 6469, 0},
    {K("k"), 7629, 0},
    {K(""), 0, 0},
    {K("user1000"), 3443, 0},
    {K("{user1000}.following"), 3443, 1},
    {K("{user1000}.followers"), 3443, 1},
    {K("foo{}{bar}"), 8363, 0},     /* the first '{' opens an empty tag */
    {K("foo{{bar}}zap"), 4015, 1},  /* the tag is "{bar" */
    {K("{bar"), 4015, 0},
    {K("foo{bar}{zap}"), 5061, 1},  /* only the first tag: "bar" */
    {K("{}"), 15257, 0},
    {K("x{}y"), 16116, 0},
    {K("a{b"), 13340, 0},
    {K("a}b"), 7866, 0},
    {K("{a}b"), 15495, 1},
    {K("lock:{a}:x"), 15495, 1},
    {K("{a}b}"), 15495, 1},
    {K("a}b{c}"), 7365, 1},
    {K("{foo}:redlock:q"), 12182, 1},
    /* binary keys (sent to the server as they are, with redis-cli -x) */
    {K("a\0b"), 8383, 0},
    {K("x{\0}y"), 0, 1},
    {K("\0"), 0, 0},
    {K("\xff\xfe\x80"), 11813, 0},
#undef K
};

static void key_slots(void **state)
{
    (void)state;
    assert_int_equal(redlock__crc16("123456789", 9), 0x31C3);
    assert_int_equal(redlock__crc16("", 0), 0);
    for (size_t i = 0; i < sizeof slot_cases / sizeof slot_cases[0]; i++) {
        unsigned got = redlock__key_slot(slot_cases[i].key, slot_cases[i].len);
        int tagged = redlock__key_has_tag(slot_cases[i].key, slot_cases[i].len);
        if (got != slot_cases[i].slot || tagged != slot_cases[i].tagged)
            fail_msg("case %zu: slot %u tagged %d, expected %u and %d", i, got,
                     tagged, slot_cases[i].slot, slot_cases[i].tagged);
    }
    /* the length counts, not a NUL */
    assert_int_equal(redlock__key_slot("foobar", 3), 12182);
    assert_int_equal(redlock__key_slot("{user1000}", 5), redlock__key_slot("{user", 5));
}

/* The CRC bit by bit, as its definition reads, against the table. */
static uint16_t crc16_bitwise(const unsigned char *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/* A small xorshift, so that the keys are the same on every run. */
static uint32_t next_random(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Keys made mostly of braces, so that every shape of tag comes up. */
static size_t random_key(uint32_t *x, char *out, size_t cap)
{
    static const char alphabet[] = "{{{}}}ab:\0\xff";
    size_t len = next_random(x) % cap;
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[next_random(x) % (sizeof alphabet - 1)];
    return len;
}

static void cluster_names(void **state)
{
    static const char *const suffixes[] = {":redlock:q", ":fence", "",
                                           "}{x}", "{"};
    char key[24], name[24 + 16 + REDLOCK__CLUSTER_NAME_EXTRA];
    uint32_t x = 2463534242u;
    int ok = 0, refused = 0, tagged = 0;
    (void)state;

    /* the two forms, and the keys that fit neither */
    size_t n = redlock__cluster_name("{job}:lock", 10, ":redlock:q", name);
    assert_int_equal(n, 20);
    assert_memory_equal(name, "{job}:lock:redlock:q", n);
    n = redlock__cluster_name("job", 3, ":fence", name);
    assert_int_equal(n, 3 + 6 + REDLOCK__CLUSTER_NAME_EXTRA);
    assert_memory_equal(name, "{job}:fence", n);
    n = redlock__cluster_channel(REDLOCK__CHANNEL_PREFIX, "job", 3, name);
    assert_memory_equal(name, REDLOCK__CHANNEL_PREFIX "{job}", n);
    n = redlock__cluster_channel(REDLOCK__CHANNEL_PREFIX, "{a}b", 4, name);
    assert_memory_equal(name, REDLOCK__CHANNEL_PREFIX "{a}b", n);
    assert_int_equal(redlock__cluster_name_ok("a{b", 3), 1);
    assert_int_equal(redlock__cluster_name_ok("foo{bar}{zap}", 13), 1);
    assert_int_equal(redlock__cluster_name_ok("foo{}{bar}", 10), 0);
    assert_int_equal(redlock__cluster_name_ok("a}b", 3), 0);
    assert_int_equal(redlock__cluster_name_ok("{}}", 3), 0);
    assert_int_equal(redlock__cluster_name_ok("", 0), 0);
    /* why "a}b" is refused: its braced name has the tag "a" */
    n = redlock__cluster_name("a}b", 3, "", name);
    assert_int_not_equal(redlock__key_slot(name, n), 7866);

    for (int i = 0; i < 20000; i++) {
        size_t len = random_key(&x, key, sizeof key);
        assert_int_equal(redlock__crc16(key, len),
                         crc16_bitwise((const unsigned char *)key, len));
        unsigned slot = redlock__key_slot(key, len);
        assert_true(slot < REDLOCK__CLUSTER_SLOTS);
        if (!redlock__cluster_name_ok(key, len)) {
            assert_false(redlock__key_has_tag(key, len));
            assert_true(len == 0 || memchr(key, '}', len));
            refused++;
            continue;
        }
        ok++;
        tagged += redlock__key_has_tag(key, len);
        for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
            n = redlock__cluster_name(key, len, suffixes[k], name);
            assert_int_equal(n, len + strlen(suffixes[k]) +
                                    (redlock__key_has_tag(key, len)
                                         ? 0 : REDLOCK__CLUSTER_NAME_EXTRA));
            if (redlock__key_slot(name, n) != slot)
                fail_msg("key %d (%zu bytes), suffix \"%s\": slot %u, the "
                         "key's %u",
                         i, len, suffixes[k], redlock__key_slot(name, n), slot);
        }
        n = redlock__cluster_channel(REDLOCK__CHANNEL_PREFIX, key, len, name);
        assert_int_equal(redlock__key_slot(name, n), slot);
    }
    /* every kind came up often */
    assert_true(ok > 1000 && refused > 1000 && tagged > 1000);
    assert_true(ok - tagged > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renew_interval), cmocka_unit_test(validity),
        cmocka_unit_test(jitter),         cmocka_unit_test(heap_order),
        cmocka_unit_test(resp_format),    cmocka_unit_test(status_table),
        cmocka_unit_test(bad_options),    cmocka_unit_test(null_handles),
        cmocka_unit_test(key_slots),      cmocka_unit_test(cluster_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
