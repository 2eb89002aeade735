/*
 * Unit tests of src/uri.c: node URL parsing, its error messages (which
 * must name the wrong part and never show a password), describe() and
 * clear().  Each table row runs as its own cmocka test, named by its URL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* Every URL below that carries a password uses this one, so that one
 * check covers them all. */
#define SECRET "s3cret"

/* ---- valid URLs -------------------------------------------------------- */

struct valid_case {
    const char *url;
    int is_unix;
    const char *host;
    int port;
    const char *path;
    const char *user;
    const char *password;
    int db;
};

static struct valid_case valid_cases[] = {
    /* defaults */
    {"redis://localhost", 0, "localhost", 6379, NULL, NULL, NULL, 0},
    {"redis://127.0.0.1", 0, "127.0.0.1", 6379, NULL, NULL, NULL, 0},
    {"redis://h/", 0, "h", 6379, NULL, NULL, NULL, 0},
    /* port and db */
    {"redis://127.0.0.1:6380", 0, "127.0.0.1", 6380, NULL, NULL, NULL, 0},
    {"redis://127.0.0.1:6380/2", 0, "127.0.0.1", 6380, NULL, NULL, NULL, 2},
    {"redis://h/15", 0, "h", 6379, NULL, NULL, NULL, 15},
    {"redis://h:1/0", 0, "h", 1, NULL, NULL, NULL, 0},
    {"redis://h:65535/2147483647", 0, "h", 65535, NULL, NULL, NULL, INT_MAX},
    {"redis://h:06379/007", 0, "h", 6379, NULL, NULL, NULL, 7},
    {"redis://my-host_1.example.com:7000", 0, "my-host_1.example.com", 7000,
     NULL, NULL, NULL, 0},
    /* IPv6 */
    {"redis://[::1]", 0, "::1", 6379, NULL, NULL, NULL, 0},
    {"redis://[::1]:6380", 0, "::1", 6380, NULL, NULL, NULL, 0},
    {"redis://[::1]/4", 0, "::1", 6379, NULL, NULL, NULL, 4},
    {"redis://[::1]:6380/3", 0, "::1", 6380, NULL, NULL, NULL, 3},
    {"redis://[2001:DB8::a1]:7000/1", 0, "2001:DB8::a1", 7000, NULL, NULL,
     NULL, 1},
    {"redis://[::ffff:192.0.2.1]:1", 0, "::ffff:192.0.2.1", 1, NULL, NULL,
     NULL, 0},
    /* userinfo */
    {"redis://alice:" SECRET "@h", 0, "h", 6379, NULL, "alice", SECRET, 0},
    {"redis://alice:p%40ss%3Aw@h", 0, "h", 6379, NULL, "alice", "p@ss:w", 0},
    {"redis://al%69ce:" SECRET "@h:7000/5", 0, "h", 7000, NULL, "alice",
     SECRET, 5},
    {"redis://u:%2f%2F%7e@h", 0, "h", 6379, NULL, "u", "//~", 0},
    {"redis://user@h", 0, "h", 6379, NULL, "user", NULL, 0},
    {"redis://:" SECRET "@h", 0, "h", 6379, NULL, NULL, SECRET, 0},
    {"redis://user:@h", 0, "h", 6379, NULL, "user", "", 0},
    {"redis://:@h", 0, "h", 6379, NULL, NULL, "", 0},
    {"redis://@h", 0, "h", 6379, NULL, NULL, NULL, 0},
    /* the last '@' ends the userinfo, so these need no escaping */
    {"redis://u:a@b@h:7000", 0, "h", 7000, NULL, "u", "a@b", 0},
    {"redis://u:a/b?c:d@h/1", 0, "h", 6379, NULL, "u", "a/b?c:d", 1},
    {"redis://u:" SECRET "@[::1]:6380/2", 0, "::1", 6380, NULL, "u", SECRET,
     2},
    /* scheme case */
    {"REDIS://Host:7000", 0, "Host", 7000, NULL, NULL, NULL, 0},
    {"Redis://h/1", 0, "h", 6379, NULL, NULL, NULL, 1},
    /* unix */
    {"unix:///tmp/redis.sock", 1, NULL, 0, "/tmp/redis.sock", NULL, NULL, 0},
    {"unix:///tmp/redis.sock?db=3", 1, NULL, 0, "/tmp/redis.sock", NULL,
     NULL, 3},
    {"unix:///tmp/redis.sock?db=0", 1, NULL, 0, "/tmp/redis.sock", NULL,
     NULL, 0},
    {"unix://u:" SECRET "@/tmp/redis.sock?db=1", 1, NULL, 0,
     "/tmp/redis.sock", "u", SECRET, 1},
    {"unix://:" SECRET "@/var/run/redis/redis.sock", 1, NULL, 0,
     "/var/run/redis/redis.sock", NULL, SECRET, 0},
    {"unix://user@/tmp/r.sock", 1, NULL, 0, "/tmp/r.sock", "user", NULL, 0},
    {"unix://u:a%2Fb%40c@/tmp/r.sock", 1, NULL, 0, "/tmp/r.sock", "u",
     "a/b@c", 0},
    {"unix:///tmp/a@b.sock", 1, NULL, 0, "/tmp/a@b.sock", NULL, NULL, 0},
    {"UNIX:///tmp/r.sock", 1, NULL, 0, "/tmp/r.sock", NULL, NULL, 0},
    /* TLS: the same forms as redis:// */
    {"rediss://h", 0, "h", 6379, NULL, NULL, NULL, 0},
    {"rediss://127.0.0.1:6380/2", 0, "127.0.0.1", 6380, NULL, NULL, NULL, 2},
    {"REDISS://alice:" SECRET "@[::1]:7000/1", 0, "::1", 7000, NULL, "alice",
     SECRET, 1},
    {"rediss://:p%40ss@redis.example.com", 0, "redis.example.com", 6379, NULL,
     NULL, "p@ss", 0},
};

/* NULL-aware string equality with the URL in the failure message. */
static void check_str(const char *url, const char *field, const char *want,
                      const char *got)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(want, got) != 0)
        fail_msg("%s: %s is %s%s%s, expected %s%s%s", url, field,
                 got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
                 want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
}

static void test_valid(void **state)
{
    const struct valid_case *c = *state;
    redlock__url u;

    memset(&u, 0xA5, sizeof u); /* parse must not trust or free this */
    assert_int_equal(redlock__url_parse(c->url, &u), REDLOCK_OK);
    assert_int_equal(u.is_unix, c->is_unix);
    check_str(c->url, "host", c->host, u.host);
    assert_int_equal(u.port, c->port);
    check_str(c->url, "path", c->path, u.path);
    check_str(c->url, "user", c->user, u.user);
    check_str(c->url, "password", c->password, u.password);
    assert_int_equal(u.db, c->db);
    assert_int_equal(u.tls, strncasecmp(c->url, "rediss:", 7) == 0);
    redlock__url_clear(&u);
}

/* ---- invalid URLs ------------------------------------------------------ */

struct invalid_case {
    const char *url;
    const char *needle; /* the message must contain it */
};

static struct invalid_case invalid_cases[] = {
    /* nothing, or no usable scheme */
    {NULL, "NULL"},
    {"", "empty"},
    {"localhost:6379", "scheme"},
    {"redis:/h", "scheme"},
    {"//h:6379", "scheme"},
    {"u:" SECRET "@h", "scheme"},
    {"u:" SECRET "@h://x", "scheme"},
    {"redis:u:" SECRET "@h", "scheme"},
    {"http://h", "unsupported scheme \"http\""},
    /* A password holding "&x=": masked whole whatever its letters (the
     * URL fuzzer's finding: "&ec=" used to mask past the '@'). */
    {"redms://u:a@b&db=@h:7000", "\"redms://u:***@h:7000\""},
    {"redms://u:b@c&ec=@h:7000", "\"redms://u:***@h:7000\""},
    {"http://u:" SECRET "@h", "unsupported scheme \"http\""},
    /* host */
    {"redis://", "host is missing"},
    {"redis://:6379", "host is missing"},
    {"redis://u:" SECRET "@", "host is missing"},
    {"redis://u:" SECRET "@/2", "host is missing"},
    {"redis://ho st", "host \"ho st\""},
    {"redis://a,b:6379", "host \"a,b\""},
    {"redis://::1:6379", "brackets"},
    {"redis://fe80::1", "IPv6 address needs brackets"},
    {"redis://u:" SECRET "@::1", "brackets"},
    {"redis://[::1", "closing"},
    {"redis://[::1:6379/0", "closing"},
    {"redis://u:" SECRET "@[::1", "closing"},
    {"redis://[]", "\"[]\" is empty"},
    {"redis://[]:6379", "empty"},
    {"redis://[::1]x", "unexpected \"x\" after the IPv6 address"},
    {"redis://[::1]6379", "after the IPv6 address"},
    {"redis://[zz::1]", "is not an IPv6 address"},
    {"redis://[localhost]", "is not an IPv6 address"},
    /* port */
    {"redis://h:", "port is empty"},
    {"redis://[::1]:", "port is empty"},
    {"redis://h:/1", "port is empty"},
    {"redis://h:0", "port \"0\" is outside 1..65535"},
    {"redis://h:65536", "port \"65536\" is outside 1..65535"},
    {"redis://h:99999999999999999999",
     "port \"99999999999999999999\" is outside"},
    {"redis://u:" SECRET "@h:99999", "port \"99999\" is outside 1..65535"},
    {"redis://[::1]:0", "port \"0\" is outside"},
    {"redis://h:abc", "port \"abc\" is not a number"},
    {"redis://h:-1", "port \"-1\" is not a number"},
    {"redis://h:+1", "port \"+1\" is not a number"},
    {"redis://h: 1", "port \" 1\" is not a number"},
    {"redis://h:6379x", "port \"6379x\" is not a number"},
    {"redis://h:0x10", "not a number"},
    /* db */
    {"redis://h/x", "db \"x\" is not a number"},
    {"redis://h/1x", "db \"1x\" is not a number"},
    {"redis://h/-1", "db \"-1\" is not a number"},
    {"redis://h/1/2", "db \"1/2\" is not a number"},
    {"redis://h//", "db \"/\" is not a number"},
    {"redis://h/2147483648", "db \"2147483648\" is outside 0..2147483647"},
    {"redis://h/99999999999999999999", "is outside 0..2147483647"},
    {"redis://u:" SECRET "@h:6379/x", "db \"x\""},
    /* query on redis:// */
    {"redis://h?db=1", "query parameter \"db\""},
    {"redis://h/0?foo=1", "query parameter \"foo\""},
    {"redis://h:6379?timeout=5&db=1", "\"timeout\""},
    {"redis://u:" SECRET "@h?foo", "\"foo\""},
    {"redis://h?", "no name"},
    /* userinfo escapes */
    {"redis://u:" SECRET "%4@h", "password has a malformed percent escape"},
    {"redis://u:" SECRET "%zz@h", "password has a malformed percent escape"},
    {"redis://u:" SECRET "%@h", "password has a malformed percent escape"},
    {"redis://u:%4" SECRET "@h", "password has a malformed"},
    {"redis://u:" SECRET "%00@h", "password decodes to a NUL byte"},
    {"redis://u%zz:" SECRET "@h", "user has a malformed percent escape"},
    {"redis://u%0:" SECRET "@h", "user has a malformed"},
    {"redis://u%00@h", "user decodes to a NUL byte"},
    {"redis://u:%z1" SECRET "@h", "password has a malformed"},
    {"redis://u:%1z" SECRET "@h", "password has a malformed"},
    {"redis://u:" SECRET "%41%00%41@h", "password decodes to a NUL byte"},
    {"unix://u:" SECRET "%g1@/tmp/r.sock", "password has a malformed"},
    /* unix */
    {"unix://", "socket path is missing"},
    {"unix://u:" SECRET "@", "socket path is missing"},
    {"unix://tmp/redis.sock", "must be absolute"},
    {"unix://u:" SECRET "/x@/tmp/r.sock", "must be absolute"},
    {"unix://h/tmp/r.sock", "must be absolute"},
    {"unix://u:" SECRET "@h/tmp/r.sock", "takes no host"},
    {"unix:///", "\"/\" names no file"},
    {"unix://u:" SECRET "@/?db=1", "names no file"},
    {"unix:///tmp/r.sock?db=x", "db \"x\" is not a number"},
    {"unix:///tmp/r.sock?db=-1", "db \"-1\" is not a number"},
    {"unix:///tmp/r.sock?db=1x", "db \"1x\" is not a number"},
    {"unix:///tmp/r.sock?db=2147483648", "is outside 0..2147483647"},
    {"unix:///tmp/r.sock?db=", "db is empty"},
    {"unix:///tmp/r.sock?db", "db is empty"},
    {"unix:///tmp/r.sock?db=1&db=2", "given twice"},
    {"unix:///tmp/r.sock?foo=1", "unknown query parameter \"foo\""},
    {"unix://u:" SECRET "@/tmp/r.sock?db=1&timeout=5",
     "unknown query parameter \"timeout\""},
    {"unix:///tmp/r.sock?DB=1", "\"DB\""},
    /* what looks like a password is masked even where the parser sees none */
    {"unix:///tmp/r.sock?a:" SECRET "@b=1", "unknown query parameter \"a:***"},
    {"unix:///tmp/r:" SECRET "@x.sock?foo", "unknown query parameter"},
    {"unix:///tmp/r.sock?", "empty query parameter"},
    {"unix:///tmp/r.sock?db=1&", "empty query parameter"},
    {"unix:///tmp/r.sock?=1", "no name"},
    {"rediss://h:0", "outside 1..65535"},
    {"rediss://h?db=1", "no query"},
    {"rediss://u:" SECRET "@h:x", "not a number"},
};

static void assert_cleared(const redlock__url *u)
{
    assert_int_equal(u->is_unix, 0);
    assert_null(u->host);
    assert_int_equal(u->port, 0);
    assert_null(u->path);
    assert_null(u->user);
    assert_null(u->password);
    assert_int_equal(u->db, 0);
    assert_int_equal(u->tls, 0);
    assert_int_equal(u->sentinel, 0);
    assert_int_equal(u->cluster, 0);
    assert_int_equal(u->nhosts, 0);
}

static void test_invalid(void **state)
{
    const struct invalid_case *c = *state;
    redlock__url u;

    memset(&u, 0xA5, sizeof u);
    assert_int_equal(redlock__url_parse(c->url, &u), REDLOCK_INVALID);
    assert_cleared(&u);

    const char *msg = redlock_last_error();
    assert_non_null(msg);
    if (!strstr(msg, c->needle))
        fail_msg("message \"%s\" lacks \"%s\"", msg, c->needle);
    if (c->url && c->url[0] != '\0' && !strstr(msg, "invalid URL \""))
        fail_msg("message \"%s\" does not quote the URL", msg);
    if (c->url && strstr(c->url, SECRET) && strstr(msg, SECRET))
        fail_msg("message \"%s\" shows the password", msg);
}

/* ---- Sentinel URLs ------------------------------------------------------ */

static void test_sentinel_valid(void **state)
{
    redlock__url u;
    char d[200];
    (void)state;

    assert_int_equal(redlock__url_parse("redis+sentinel://h1,h2:26380,[::1]:7/"
                                        "my%2Dmaster/3",
                                        &u),
                     REDLOCK_OK);
    assert_int_equal(u.sentinel, 1);
    assert_int_equal(u.cluster, 0);
    assert_int_equal(u.nhosts, 3);
    assert_string_equal(u.hosts[0], "h1");
    assert_int_equal(u.ports[0], 26379);
    assert_string_equal(u.hosts[1], "h2");
    assert_int_equal(u.ports[1], 26380);
    assert_string_equal(u.hosts[2], "::1");
    assert_int_equal(u.ports[2], 7);
    assert_string_equal(u.master, "my-master");
    assert_int_equal(u.db, 3);
    assert_null(u.host);
    assert_int_equal(u.tls, 0);
    redlock__url_describe(&u, d, sizeof d);
    assert_string_equal(d, "sentinel:my-master(h1:26379,h2:26380,[::1]:7)/3");
    redlock__url_clear(&u);

    assert_int_equal(
        redlock__url_parse("rediss+sentinel://bob:" SECRET "@h/m?sentinel_user="
                           "sen&sentinel_password=p%40ss",
                           &u),
        REDLOCK_OK);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.password, SECRET);
    assert_string_equal(u.sentinel_user, "sen");
    assert_string_equal(u.sentinel_password, "p@ss");
    assert_string_equal(u.master, "m");
    redlock__url_describe(&u, d, sizeof d);
    assert_string_equal(d, "sentinel:m(h:26379)");
    redlock__url_clear(&u);
}

static void test_sentinel_invalid(void **state)
{
    static const struct {
        const char *url, *needle;
    } cases[] = {
        {"redis+sentinel://h", "the master name is missing"},
        {"redis+sentinel://h/", "the master name is missing"},
        {"redis+sentinel://h//2", "the master name is missing"},
        {"redis+sentinel:///m", "no sentinel address"},
        {"redis+sentinel://h,,h2/m", "an empty sentinel address"},
        {"redis+sentinel://h,/m", "an empty sentinel address"},
        {"redis+sentinel://h:1,H:1/m", "sentinel \"H:1\" is listed twice"},
        {"redis+sentinel://h,h:26379/m", "is listed twice"},
        {"redis+sentinel://h:0/m", "port \"0\" is outside 1..65535"},
        {"redis+sentinel://h/m%20x", "holds a space"},
        {"redis+sentinel://h/m/x", "db \"x\" is not a number"},
        {"redis+sentinel://h/m?db=1", "unknown query parameter \"db\""},
        {"redis+sentinel://h/m?sentinel_user=a&sentinel_user=b",
         "sentinel_user is given twice"},
        {"redis+sentinel://h/m?sentinel_password", "has no value"},
        {"redis+sentinel://u:" SECRET "@h/m?sentinel_password=" SECRET
         "&x=1",
         "unknown query parameter \"x\""},
        {"redis+sentinel://h/m?sentinel_password=" SECRET "&bad",
         "unknown query parameter \"bad\""},
        {"redis+sentinel://h/m?SENTINEL_PASSWORD=" SECRET,
         "unknown query parameter"},
        {"redis+sentinel://h/m?sentinel_pasword=" SECRET,
         "?sentinel_pasword=***\": unknown query parameter"},
        {"redis+sentinel://h1,h2,h3,h4,h5,h6,h7,h8,h9,h10,h11,h12,h13,h14,"
         "h15,h16,h17/m",
         "more than 16 sentinel addresses"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        redlock__url u;
        assert_int_equal(redlock__url_parse(cases[i].url, &u), REDLOCK_INVALID);
        const char *msg = redlock_last_error();
        if (!strstr(msg, cases[i].needle))
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].url, msg,
                     cases[i].needle);
        if (strstr(msg, SECRET))
            fail_msg("message \"%s\" shows a password", msg);
    }
}

/* ---- Cluster URLs ------------------------------------------------------- */

struct cluster_case {
    const char *url;
    const char *describe;
    const char *user, *password;
    int tls;
};

static const struct cluster_case cluster_valid_cases[] = {
    {"redis+cluster://h", "cluster(h:6379)", NULL, NULL, 0},
    {"redis+cluster://h1:7000,h2:7001,h3", "cluster(h1:7000,h2:7001,h3:6379)",
     NULL, NULL, 0},
    {"redis+cluster://h/", "cluster(h:6379)", NULL, NULL, 0},
    {"redis+cluster://h:7000/0", "cluster(h:7000)", NULL, NULL, 0},
    {"redis+cluster://[::1]:7000,[2001:db8::1],10.0.0.1:7001",
     "cluster([::1]:7000,[2001:db8::1]:6379,10.0.0.1:7001)", NULL, NULL, 0},
    {"redis+cluster://alice:" SECRET "@h1,h2:7000/0",
     "cluster(h1:6379,h2:7000)", "alice", SECRET, 0},
    {"redis+cluster://:p%40ss@h", "cluster(h:6379)", NULL, "p@ss", 0},
    {"redis+cluster://u:a@b@h", "cluster(h:6379)", "u", "a@b", 0},
    /* the same host on two ports is two seeds */
    {"redis+cluster://h:7000,h:7001", "cluster(h:7000,h:7001)", NULL, NULL,
     0},
    {"rediss+cluster://bob:" SECRET "@h1:7000,h2:7000",
     "cluster(h1:7000,h2:7000)", "bob", SECRET, 1},
    {"REDISS+CLUSTER://h", "cluster(h:6379)", NULL, NULL, 1},
};

static void test_cluster_valid(void **state)
{
    char d[300];
    (void)state;

    for (size_t i = 0;
         i < sizeof cluster_valid_cases / sizeof cluster_valid_cases[0]; i++) {
        const struct cluster_case *c = &cluster_valid_cases[i];
        redlock__url u;
        memset(&u, 0xA5, sizeof u);
        if (redlock__url_parse(c->url, &u) != REDLOCK_OK)
            fail_msg("%s: %s", c->url, redlock_last_error());
        assert_int_equal(u.cluster, 1);
        assert_int_equal(u.sentinel, 0);
        assert_int_equal(u.is_unix, 0);
        assert_int_equal(u.tls, c->tls);
        assert_int_equal(u.db, 0);
        assert_true(u.nhosts > 0);
        assert_null(u.host);
        assert_int_equal(u.port, 0);
        assert_null(u.master);
        check_str(c->url, "user", c->user, u.user);
        check_str(c->url, "password", c->password, u.password);
        redlock__url_describe(&u, d, sizeof d);
        if (strcmp(d, c->describe) != 0)
            fail_msg("%s: described as \"%s\", expected \"%s\"", c->url, d,
                     c->describe);
        redlock__url_clear(&u);
        assert_cleared(&u);
    }

    /* the hosts one by one, brackets taken off */
    redlock__url u;
    assert_int_equal(redlock__url_parse("redis+cluster://H1,[::1]:7000,h3:1",
                                        &u),
                     REDLOCK_OK);
    assert_int_equal(u.nhosts, 3);
    assert_string_equal(u.hosts[0], "H1");
    assert_int_equal(u.ports[0], 6379);
    assert_string_equal(u.hosts[1], "::1");
    assert_int_equal(u.ports[1], 7000);
    assert_string_equal(u.hosts[2], "h3");
    assert_int_equal(u.ports[2], 1);
    redlock__url_clear(&u);

    /* 16 seeds is the most */
    assert_int_equal(redlock__url_parse("redis+cluster://h1,h2,h3,h4,h5,h6,h7,"
                                        "h8,h9,h10,h11,h12,h13,h14,h15,h16",
                                        &u),
                     REDLOCK_OK);
    assert_int_equal(u.nhosts, REDLOCK__MAX_SEEDS);
    redlock__url_clear(&u);
}

static void test_cluster_invalid(void **state)
{
    static const struct {
        const char *url, *needle;
    } cases[] = {
        {"redis+cluster://", "no seed address"},
        {"redis+cluster:///0", "no seed address"},
        {"redis+cluster://u:" SECRET "@", "no seed address"},
        {"redis+cluster://?x=1", "no seed address"},
        {"redis+cluster://h,", "an empty seed address"},
        {"redis+cluster://h,/0", "an empty seed address"},
        {"redis+cluster://,h", "an empty seed address"},
        {"redis+cluster://h,,h2", "an empty seed address"},
        {"redis+cluster://h:7000,H:7000", "seed \"H:7000\" is listed twice"},
        {"redis+cluster://h,h:6379", "seed \"h:6379\" is listed twice"},
        {"redis+cluster://[::1]:7000,[::1]:7000", "is listed twice"},
        {"redis+cluster://h:0", "port \"0\" is outside 1..65535"},
        {"redis+cluster://h1,h2:65536", "port \"65536\" is outside"},
        {"redis+cluster://h1:x,h2", "port \"x\" is not a number"},
        {"redis+cluster://h:", "port is empty"},
        {"redis+cluster://u:" SECRET "@h:99999", "port \"99999\" is outside"},
        {"redis+cluster://[::1", "closing"},
        {"redis+cluster://::1", "brackets"},
        {"redis+cluster://h1,ho st", "host \"ho st\""},
        {"redis+cluster://h/1", "db \"1\": a Redis Cluster has only db 0"},
        {"redis+cluster://u:" SECRET "@h1,h2/1", "has only db 0"},
        {"redis+cluster://h/x", "db \"x\": a Redis Cluster has only db 0"},
        {"redis+cluster://h/0/1", "db \"0/1\""},
        {"redis+cluster://h//", "db \"/\""},
        {"redis+cluster://h/99999999999", "has only db 0"},
        {"redis+cluster://h?db=1", "unknown query parameter \"db\" "
                                   "(redis+cluster:// takes no query)"},
        {"redis+cluster://h/0?foo=1", "unknown query parameter \"foo\""},
        {"redis+cluster://u:" SECRET "@h?password=" SECRET,
         "unknown query parameter \"password\""},
        {"redis+cluster://u:" SECRET "%zz@h", "password has a malformed"},
        {"rediss+cluster://h,", "an empty seed address"},
        {"rediss+cluster://h/2", "has only db 0"},
        {"redis+cluster://h1,h2,h3,h4,h5,h6,h7,h8,h9,h10,h11,h12,h13,h14,"
         "h15,h16,h17",
         "more than 16 seed addresses"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        redlock__url u;
        memset(&u, 0xA5, sizeof u);
        assert_int_equal(redlock__url_parse(cases[i].url, &u), REDLOCK_INVALID);
        assert_cleared(&u);
        const char *msg = redlock_last_error();
        if (!strstr(msg, cases[i].needle))
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].url, msg,
                     cases[i].needle);
        if (!strstr(msg, "invalid URL \""))
            fail_msg("message \"%s\" does not quote the URL", msg);
        if (strstr(msg, SECRET))
            fail_msg("message \"%s\" shows a password", msg);
    }

    /* one message in full */
    redlock__url u;
    assert_int_equal(redlock__url_parse("redis+cluster://u:" SECRET
                                        "@h1,h2/3",
                                        &u),
                     REDLOCK_INVALID);
    assert_string_equal(redlock_last_error(),
                        "invalid URL \"redis+cluster://u:***@h1,h2/3\": db "
                        "\"3\": a Redis Cluster has only db 0 (write /0, or "
                        "no path)");
}

/* ---- messages in full, and masking ------------------------------------- */

static void test_message_exact(void **state)
{
    redlock__url u;
    (void)state;

    assert_int_equal(redlock__url_parse("redis://u:" SECRET "@h:99999", &u),
                     REDLOCK_INVALID);
    assert_string_equal(redlock_last_error(),
                        "invalid URL \"redis://u:***@h:99999\": port "
                        "\"99999\" is outside 1..65535");

    assert_int_equal(redlock__url_parse("redis://::1:6379", &u),
                     REDLOCK_INVALID);
    assert_string_equal(redlock_last_error(),
                        "invalid URL \"redis://::1:6379\": host \"::1:6379\" "
                        "has more than one \":\"; an IPv6 address needs "
                        "brackets, as in redis://[::1]:6379");

    /* no password: nothing masked, the user stays readable */
    assert_int_equal(redlock__url_parse("redis://bob@h:0", &u),
                     REDLOCK_INVALID);
    assert_string_equal(redlock_last_error(),
                        "invalid URL \"redis://bob@h:0\": port \"0\" is "
                        "outside 1..65535");

    /* an '@' inside the password is masked up to the last one */
    assert_int_equal(redlock__url_parse("redis://u:s3@cr@et@h/x", &u),
                     REDLOCK_INVALID);
    assert_string_equal(redlock_last_error(),
                        "invalid URL \"redis://u:***@h/x\": db \"x\" is not "
                        "a number (expected 0..2147483647)");

    /* an empty password is masked once, like any other */
    assert_int_equal(redlock__url_parse("redis://u:@h:0", &u),
                     REDLOCK_INVALID);
    assert_string_equal(redlock_last_error(),
                        "invalid URL \"redis://u:***@h:0\": port \"0\" is "
                        "outside 1..65535");

    /* a quoted part that overlaps the masked range is masked too */
    assert_int_equal(
        redlock__url_parse("unix:///n:?x.y:" SECRET "@z", &u),
        REDLOCK_INVALID);
    assert_string_equal(redlock_last_error(),
                        "invalid URL \"unix:///n:***@z\": unknown query "
                        "parameter \"***@z\" (only db=N is accepted)");

    /* control bytes are not copied into the message */
    assert_int_equal(redlock__url_parse("redis://h\n:1", &u),
                     REDLOCK_INVALID);
    assert_null(strchr(redlock_last_error(), '\n'));
}

/* A long URL is cut in its message, and the cut never uncovers the
 * password, wherever the password falls. */
static void test_message_long(void **state)
{
    char url[1200];
    redlock__url u;
    (void)state;

    for (size_t user_len = 0; user_len < 400; user_len += 7) {
        size_t o = (size_t)snprintf(url, sizeof url, "redis://");
        memset(url + o, 'a', user_len);
        o += user_len;
        o += (size_t)snprintf(url + o, sizeof url - o, ":" SECRET "@");
        memset(url + o, 'h', 300);
        o += 300;
        snprintf(url + o, sizeof url - o, ":0");

        assert_int_equal(redlock__url_parse(url, &u), REDLOCK_INVALID);
        const char *msg = redlock_last_error();
        assert_null(strstr(msg, SECRET));
        assert_non_null(strstr(msg, "..."));
        assert_non_null(strstr(msg, "is outside 1..65535"));
    }
}

/* ---- describe ---------------------------------------------------------- */

struct describe_case {
    const char *url;
    const char *want;
};

static const struct describe_case describe_cases[] = {
    {"redis://localhost", "localhost:6379"},
    {"redis://127.0.0.1:6380/2", "127.0.0.1:6380/2"},
    {"redis://127.0.0.1:6380/0", "127.0.0.1:6380"},
    {"redis://[::1]", "[::1]:6379"},
    {"redis://[::1]:7000", "[::1]:7000"},
    {"redis://[::1]/3", "[::1]:6379/3"},
    {"redis://u:" SECRET "@h", "h:6379"},
    {"unix:///tmp/r.sock", "unix:/tmp/r.sock"},
    {"unix://u:" SECRET "@/tmp/r.sock?db=4", "unix:/tmp/r.sock?db=4"},
    {"redis+cluster://u:" SECRET "@h1,[::1]:7000", "cluster(h1:6379,[::1]:7000)"},
    {"redis+sentinel://u:" SECRET "@h1,h2/m/2", "sentinel:m(h1:26379,h2:26379)/2"},
};

static void test_describe(void **state)
{
    char buf[300];
    redlock__url u;
    (void)state;

    for (size_t i = 0; i < sizeof describe_cases / sizeof describe_cases[0];
         i++) {
        const struct describe_case *c = &describe_cases[i];
        assert_int_equal(redlock__url_parse(c->url, &u), REDLOCK_OK);
        redlock__url_describe(&u, buf, sizeof buf);
        if (strcmp(buf, c->want) != 0)
            fail_msg("%s: described as \"%s\", expected \"%s\"", c->url, buf,
                     c->want);
        assert_null(strstr(buf, SECRET));
        redlock__url_clear(&u);
    }
}

static void test_describe_truncates(void **state)
{
    char buf[16];
    redlock__url u;
    (void)state;

    assert_int_equal(redlock__url_parse("redis://127.0.0.1:6380/2", &u),
                     REDLOCK_OK);

    memset(buf, 'Z', sizeof buf);
    redlock__url_describe(&u, buf, 8);
    assert_string_equal(buf, "127.0.0");
    assert_int_equal(buf[8], 'Z'); /* nothing past len */

    memset(buf, 'Z', sizeof buf);
    redlock__url_describe(&u, buf, 1);
    assert_string_equal(buf, "");
    assert_int_equal(buf[1], 'Z');

    memset(buf, 'Z', sizeof buf);
    redlock__url_describe(&u, buf, 0);
    assert_int_equal(buf[0], 'Z');
    redlock__url_describe(&u, NULL, 0);

    redlock__url_describe(NULL, buf, sizeof buf);
    assert_non_null(memchr(buf, '\0', sizeof buf));

    redlock__url_clear(&u);
}

/* ---- clear ------------------------------------------------------------- */

static void test_clear(void **state)
{
    redlock__url u;
    (void)state;

    assert_int_equal(
        redlock__url_parse("redis://alice:" SECRET "@[::1]:6380/3", &u),
        REDLOCK_OK);
    redlock__url_clear(&u);
    assert_cleared(&u);
    redlock__url_clear(&u);
    assert_cleared(&u);

    assert_int_equal(
        redlock__url_parse("unix://bob:" SECRET "@/tmp/r.sock?db=2", &u),
        REDLOCK_OK);
    redlock__url_clear(&u);
    assert_cleared(&u);
    redlock__url_clear(&u);

    redlock__url_clear(NULL);

    /* a cleared struct parses again without leaking (run under ASan) */
    assert_int_equal(redlock__url_parse("redis://h", &u), REDLOCK_OK);
    redlock__url_clear(&u);
}

/* sun_path holds 108 bytes with the NUL: a 107-byte path is the longest. */
static void test_unix_path_limit(void **state)
{
    char url[200];
    redlock__url u;
    (void)state;

    for (size_t len = 100; len <= 110; len++) {
        size_t o = (size_t)snprintf(url, sizeof url, "unix://u:" SECRET "@/");
        memset(url + o, 'x', len - 1);
        url[o + len - 1] = '\0';
        redlock_status st = redlock__url_parse(url, &u);
        if (len <= 107) {
            assert_int_equal(st, REDLOCK_OK);
            assert_int_equal(strlen(u.path), len);
            assert_string_equal(u.password, SECRET);
            redlock__url_clear(&u);
        } else {
            assert_int_equal(st, REDLOCK_INVALID);
            assert_cleared(&u);
            assert_non_null(strstr(redlock_last_error(), "the limit is 107"));
            assert_null(strstr(redlock_last_error(), SECRET));
        }
    }
}

static void test_null_out(void **state)
{
    (void)state;
    assert_int_equal(redlock__url_parse("redis://h", NULL), REDLOCK_INVALID);
}

/* ---- main -------------------------------------------------------------- */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define NFIXED 11

int main(void)
{
    struct CMUnitTest tests[COUNT(valid_cases) + COUNT(invalid_cases) +
                            NFIXED];
    size_t n = 0;

    for (size_t i = 0; i < COUNT(valid_cases); i++) {
        struct CMUnitTest t = {valid_cases[i].url, test_valid, NULL, NULL,
                               &valid_cases[i]};
        tests[n++] = t;
    }
    for (size_t i = 0; i < COUNT(invalid_cases); i++) {
        struct CMUnitTest t = {
            invalid_cases[i].url ? invalid_cases[i].url : "(NULL URL)",
            test_invalid, NULL, NULL, &invalid_cases[i]};
        tests[n++] = t;
    }
    const struct CMUnitTest fixed[NFIXED] = {
        cmocka_unit_test(test_message_exact),
        cmocka_unit_test(test_message_long),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_describe_truncates),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_unix_path_limit),
        cmocka_unit_test(test_null_out),
        cmocka_unit_test(test_sentinel_valid),
        cmocka_unit_test(test_sentinel_invalid),
        cmocka_unit_test(test_cluster_valid),
        cmocka_unit_test(test_cluster_invalid),
    };
    for (size_t i = 0; i < NFIXED; i++)
        tests[n++] = fixed[i];

    return cmocka_run_group_tests(tests, NULL, NULL);
}
