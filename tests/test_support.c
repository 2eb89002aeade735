/* Self-test of the redis-server helper (tests/support/redis_server.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "redis_server.h"

/* 1 when a listening socket can be bound to 127.0.0.1:port. */
static int port_is_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 1) == 0;
    close(fd);
    return ok;
}

/* Checks a status or string reply and frees it. */
static void expect_reply(redisReply *r, int type, const char *want)
{
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR && type != REDIS_REPLY_ERROR)
        fail_msg("error reply: %s", r->str);
    assert_int_equal(r->type, type);
    if (want != NULL)
        assert_true(strncmp(r->str, want, strlen(want)) == 0);
    freeReplyObject(r);
}

static int process_exists(pid_t pid)
{
    return kill(pid, 0) == 0 || errno != ESRCH;
}

static void test_start_commands(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    assert_true(s.pid > 0);
    assert_true(s.port > 0 && s.port != 6379);

    char want[64];
    snprintf(want, sizeof want, "redis://127.0.0.1:%d", s.port);
    assert_string_equal(s.url, want);
    assert_true(strncmp(s.unix_url, "unix:///tmp/", 12) == 0);
    assert_string_equal(s.unix_url + strlen("unix://"), s.sock);
    assert_int_equal(access(s.sock, F_OK), 0);

    expect_reply(rt_cmd(&s, "SET %s %s", "greeting", "hello"), REDIS_REPLY_STATUS, "OK");
    char *v = rt_get(&s, "greeting");
    assert_non_null(v);
    assert_string_equal(v, "hello");
    free(v);
    assert_null(rt_get(&s, "missing"));
    assert_int_equal(rt_pttl(&s, "greeting"), -1);
    assert_int_equal(rt_pttl(&s, "missing"), -2);
    assert_true(rt_cmd_ok(&s, "SET %s %s PX %d", "ttl", "x", 10000));
    long long pttl = rt_pttl(&s, "ttl");
    assert_true(pttl > 0 && pttl <= 10000);

    /* Nothing persisted; DEBUG allowed locally. */
    redisReply *r = rt_cmd(&s, "CONFIG GET save");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[1]->str, "");
    freeReplyObject(r);
    expect_reply(rt_cmd(&s, "DEBUG SLEEP 0"), REDIS_REPLY_STATUS, "OK");

    /* The unix socket answers too. */
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectUnixWithTimeout(s.sock, tv);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    expect_reply(redisCommand(c, "GET greeting"), REDIS_REPLY_STRING, "hello");
    redisFree(c);

    rt_server_stop(&s);
}

static void test_restart(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    pid_t old_pid = s.pid;
    int port = s.port;
    char dir[sizeof s.dir];
    snprintf(dir, sizeof dir, "%s", s.dir);
    assert_true(rt_cmd_ok(&s, "SET k v"));

    assert_int_equal(rt_server_restart(&s), 0);
    assert_true(s.pid > 0);
    assert_true(s.pid != old_pid);
    assert_false(process_exists(old_pid));
    assert_int_equal(s.port, port);
    assert_string_equal(s.dir, dir);
    expect_reply(rt_cmd(&s, "PING"), REDIS_REPLY_STATUS, "PONG");
    assert_null(rt_get(&s, "k")); /* nothing survives a restart */

    rt_server_stop(&s);
}

static void test_pause_resume(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    assert_int_equal(rt_server_pause(&s), 0);
    s.cmd_timeout_ms = 300;
    redisReply *r = rt_cmd(&s, "PING");
    assert_null(r); /* connects (the kernel accepts) but no answer */
    assert_int_equal(rt_server_resume(&s), 0);
    s.cmd_timeout_ms = 2000;
    expect_reply(rt_cmd(&s, "PING"), REDIS_REPLY_STATUS, "PONG");
    rt_server_stop(&s);
}

static void test_stop(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    pid_t pid = s.pid;
    int port = s.port;
    char dir[sizeof s.dir];
    snprintf(dir, sizeof dir, "%s", s.dir);

    rt_server_stop(&s);
    assert_int_equal(s.pid, 0);
    errno = 0;
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_true(port_is_free(port));
    assert_int_not_equal(access(dir, F_OK), 0);
    assert_null(rt_cmd(&s, "PING"));

    rt_server_stop(&s); /* idempotent */
    rt_server zero;
    memset(&zero, 0, sizeof zero);
    rt_server_stop(&zero);
}

static void test_stop_paused(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, NULL), 0);
    pid_t pid = s.pid;
    assert_int_equal(rt_server_pause(&s), 0);
    rt_server_stop(&s);
    assert_false(process_exists(pid));
}

static void test_extra_args_and_auth(void **state)
{
    (void)state;
    rt_server s;
    const char *const args[] = {"--requirepass", "s3cret", "--maxmemory", "12mb", NULL};
    assert_int_equal(rt_server_start(&s, args), 0);
    assert_string_equal(s.password, "s3cret");

    /* rt_cmd authenticates with the --requirepass password. */
    redisReply *r = rt_cmd(&s, "CONFIG GET maxmemory");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[1]->str, "12582912");
    freeReplyObject(r);

    expect_reply(rt_cmd_auth(&s, NULL, "PING"), REDIS_REPLY_ERROR, "NOAUTH");
    expect_reply(rt_cmd_auth(&s, "wrong", "PING"), REDIS_REPLY_ERROR, "WRONGPASS");
    expect_reply(rt_cmd_auth(&s, "s3cret", "PING"), REDIS_REPLY_STATUS, "PONG");

    /* An ACL user. */
    assert_true(rt_cmd_ok(&s, "ACL SETUSER locker on >lockpw ~lock:* +@all"));
    expect_reply(rt_cmd_user(&s, "locker", "lockpw", "SET lock:a 1"), REDIS_REPLY_STATUS, "OK");
    expect_reply(rt_cmd_user(&s, "locker", "lockpw", "SET other 1"), REDIS_REPLY_ERROR, "NOPERM");
    expect_reply(rt_cmd_user(&s, "locker", "nope", "PING"), REDIS_REPLY_ERROR, "WRONGPASS");

    /* The arguments survive a restart. */
    assert_int_equal(rt_server_restart(&s), 0);
    expect_reply(rt_cmd_auth(&s, NULL, "PING"), REDIS_REPLY_ERROR, "NOAUTH");
    expect_reply(rt_cmd(&s, "PING"), REDIS_REPLY_STATUS, "PONG");

    rt_server_stop(&s);
}

static void test_two_servers(void **state)
{
    (void)state;
    rt_server a, b;
    assert_int_equal(rt_server_start(&a, NULL), 0);
    assert_int_equal(rt_server_start(&b, NULL), 0);
    assert_int_not_equal(a.port, b.port);
    assert_string_not_equal(a.dir, b.dir);
    assert_true(rt_cmd_ok(&a, "SET where a"));
    assert_true(rt_cmd_ok(&b, "SET where b"));
    char *va = rt_get(&a, "where"), *vb = rt_get(&b, "where");
    assert_non_null(va);
    assert_non_null(vb);
    assert_string_equal(va, "a");
    assert_string_equal(vb, "b");
    free(va);
    free(vb);
    rt_server_stop(&a);
    rt_server_stop(&b);
}

static void test_free_port(void **state)
{
    (void)state;
    int port = rt_free_port();
    assert_true(port > 0 && port < 65536 && port != 6379);
    assert_true(port_is_free(port));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_commands),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_stop_paused),
        cmocka_unit_test(test_extra_args_and_auth),
        cmocka_unit_test(test_two_servers),
        cmocka_unit_test(test_free_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
