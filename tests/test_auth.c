/* Integration: credentials and databases.  Passwords (plain and
 * percent-encoded), ACL users and their permissions, SELECT of a database,
 * unix sockets, and the replay of AUTH and SELECT on reconnect.  Messages
 * must never carry a password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_server.h"
#include "redlock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD "s3cret"

/* Two servers for the whole group: one that wants a password, one that
 * does not.  Clients a test makes are freed by the test or, should an
 * assertion fail, by the per-test teardown. */
typedef struct group {
    rt_server pw;   /* --requirepass s3cret */
    rt_server open; /* no password */
    redlock_client *c[4];
    int nc;
} group;

static group *G;

static int group_setup(void **state)
{
    G = calloc(1, sizeof *G);
    if (G == NULL)
        return -1;
    if (rt_server_start(&G->pw, (const char *const[]){"--requirepass", PASSWORD, NULL}) != 0 ||
        rt_server_start(&G->open, NULL) != 0) {
        rt_server_stop(&G->pw);
        free(G);
        G = NULL;
        return -1;
    }
    *state = G;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (G != NULL) {
        rt_server_stop(&G->pw);
        rt_server_stop(&G->open);
        free(G);
        G = NULL;
    }
    return 0;
}

static int free_clients(void **state)
{
    (void)state;
    for (int i = 0; i < G->nc; i++)
        redlock_client_free(G->c[i]);
    G->nc = 0;
    return 0;
}

static void free_client(redlock_client *c)
{
    for (int i = 0; i < G->nc; i++)
        if (G->c[i] == c) {
            G->c[i] = G->c[--G->nc];
            break;
        }
    redlock_client_free(c);
}

static void fast_options(redlock_options *o)
{
    redlock_options_init(o);
    o->connect_timeout_ms = 500;
    o->io_timeout_ms = 500;
    o->retry_delay_ms = 20;
}

static redlock_client *try_connect(const char *url, redlock_status *st)
{
    redlock_options o;
    fast_options(&o);
    *st = REDLOCK_NOMEM;
    redlock_client *c = redlock_connect((const char *[]){url}, 1, &o, st);
    if (c != NULL && G->nc < 4)
        G->c[G->nc++] = c;
    return c;
}

static redlock_client *must_connect(const char *url)
{
    redlock_status st;
    redlock_client *c = try_connect(url, &st);
    if (c == NULL)
        print_error("connect %s: %s: %s\n", url, redlock_strerror(st),
                    redlock_last_error());
    assert_non_null(c);
    assert_int_equal(st, REDLOCK_OK);
    return c;
}

/* Connecting must fail with `want`; the message must name the server and
 * carry none of the secrets (NULL-terminated list). */
static void connect_fails(const char *url, redlock_status want, const char *where,
                          const char *const *secrets)
{
    redlock_status st;
    redlock_client *c = try_connect(url, &st);
    const char *msg = redlock_last_error();
    print_message("connect %s -> %s: %s\n", where, redlock_strerror(st), msg);
    assert_null(c);
    assert_int_equal(st, want);
    if (where != NULL)
        assert_non_null(strstr(msg, where));
    for (int i = 0; secrets != NULL && secrets[i] != NULL; i++) {
        if (strstr(msg, secrets[i]) != NULL)
            print_error("message \"%s\" shows the secret \"%s\"\n", msg, secrets[i]);
        assert_null(strstr(msg, secrets[i]));
    }
}

static void tcp_url(char *buf, size_t len, const char *userinfo, const rt_server *s,
                    const char *tail)
{
    snprintf(buf, len, "redis://%s%s127.0.0.1:%d%s", userinfo ? userinfo : "",
             userinfo ? "@" : "", s->port, tail ? tail : "");
}

static void where_of(char *buf, size_t len, const rt_server *s)
{
    snprintf(buf, len, "127.0.0.1:%d", s->port);
}

/* GET key in database db, over a connection of our own (SELECT is per
 * connection).  A malloc'd copy, or NULL. */
static char *get_in_db(rt_server *s, int db, const char *key)
{
    redisReply *r = rt_cmd(s, "EVAL %s 0 %d %s",
                           "redis.call('select', tonumber(ARGV[1])) "
                           "return redis.call('get', ARGV[2])",
                           db, key);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        print_error("EVAL: %s\n", r->str);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static void assert_in_db(rt_server *s, int db, const char *key, const char *token)
{
    char *v = get_in_db(s, db, key);
    int ok = v != NULL && strcmp(v, token) == 0;
    if (!ok)
        print_error("db %d key %s: \"%s\", expected \"%s\"\n", db, key,
                    v ? v : "(nil)", token);
    free(v);
    assert_true(ok);
}

static void assert_not_in_db(rt_server *s, int db, const char *key)
{
    char *v = get_in_db(s, db, key);
    int present = v != NULL;
    if (present)
        print_error("db %d key %s holds \"%s\"\n", db, key, v);
    free(v);
    assert_false(present);
}

/* Acquire key, check it landed in db with our token, release, check gone. */
static void lock_roundtrip(redlock_client *c, rt_server *s, int db, const char *key)
{
    redlock_lock *l = NULL;
    redlock_status st = redlock_acquire(c, key, 30000, 0, &l);
    if (st != REDLOCK_OK)
        print_error("acquire %s: %s: %s\n", key, redlock_strerror(st), redlock_last_error());
    assert_int_equal(st, REDLOCK_OK);
    assert_in_db(s, db, key, redlock_token(l));
    if (db != 0)
        assert_not_in_db(s, 0, key);
    char tok[64];
    int64_t pttl = 0;
    assert_int_equal(redlock_inspect(c, key, tok, sizeof tok, &pttl), REDLOCK_OK);
    assert_string_equal(tok, redlock_token(l));
    assert_true(pttl > 0 && pttl <= 30000);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    assert_not_in_db(s, db, key);
}

/* ACL SETUSER <rule>: hiredis splits a literal format at spaces, and the
 * rules here hold no '%'. */
static void acl(rt_server *s, const char *rule)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ACL SETUSER %s", rule);
    assert_null(strchr(rule, '%'));
    if (!rt_cmd_ok(s, cmd)) {
        print_error("%s failed\n", cmd);
        fail();
    }
}

/* ---- passwords -------------------------------------------------------------- */

static void right_password(void **state)
{
    (void)state;
    char url[128];
    tcp_url(url, sizeof url, ":" PASSWORD, &G->pw, NULL);
    redlock_client *c = must_connect(url);
    lock_roundtrip(c, &G->pw, 0, "auth:right");
    free_client(c);
}

static void wrong_password(void **state)
{
    (void)state;
    char url[128], where[64];
    tcp_url(url, sizeof url, ":zz-bad-pw-zz", &G->pw, NULL);
    where_of(where, sizeof where, &G->pw);
    connect_fails(url, REDLOCK_AUTH, where,
                  (const char *const[]){PASSWORD, "zz-bad-pw-zz", NULL});
    assert_true(strlen(redlock_last_error()) > strlen(where));
}

static void missing_password(void **state)
{
    (void)state;
    char url[128], where[64];
    tcp_url(url, sizeof url, NULL, &G->pw, NULL);
    where_of(where, sizeof where, &G->pw);
    connect_fails(url, REDLOCK_AUTH, where, (const char *const[]){PASSWORD, NULL});
    assert_non_null(strstr(redlock_last_error(), "NOAUTH"));
}

/* A password sent to a server that wants none: Redis 7 answers AUTH with
 * an error ("...without any password configured"), which the library
 * reports as a refusal of credentials, without the password. */
static void password_to_open_server(void **state)
{
    (void)state;
    char url[128], where[64];
    tcp_url(url, sizeof url, ":unneeded-pw", &G->open, NULL);
    where_of(where, sizeof where, &G->open);
    connect_fails(url, REDLOCK_AUTH, where, (const char *const[]){"unneeded-pw", NULL});
}

static void percent_encoded_password(void **state)
{
    (void)state;
    rt_server s;
    assert_int_equal(rt_server_start(&s, (const char *const[]){"--requirepass", "p@ss:w/rd", NULL}), 0);
    char url[160], where[64];
    tcp_url(url, sizeof url, ":p%40ss%3Aw%2Frd", &s, NULL);
    redlock_status st;
    redlock_client *c = try_connect(url, &st);
    if (c == NULL)
        print_error("connect: %s: %s\n", redlock_strerror(st), redlock_last_error());
    if (c != NULL) {
        lock_roundtrip(c, &s, 0, "auth:percent");
        free_client(c);
    }
    /* The raw password, left encoded, is wrong; and neither form shows. */
    tcp_url(url, sizeof url, ":p%40ss%3Aw%2Frx", &s, NULL);
    where_of(where, sizeof where, &s);
    redlock_client *bad = try_connect(url, &st);
    redlock_status bad_st = st;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", redlock_last_error());
    rt_server_stop(&s);
    assert_non_null(c);
    assert_null(bad);
    assert_int_equal(bad_st, REDLOCK_AUTH);
    assert_null(strstr(msg, "p@ss:w/r"));
    assert_null(strstr(msg, "p%40ss"));
    assert_non_null(strstr(msg, where));
}

/* ---- ACL users -------------------------------------------------------------- */

static void acl_user(void **state)
{
    (void)state;
    acl(&G->pw, "alice on >alicepw ~* &* +@all");
    char url[160];
    tcp_url(url, sizeof url, "alice:alicepw", &G->pw, NULL);
    redlock_client *c = must_connect(url);
    lock_roundtrip(c, &G->pw, 0, "auth:alice");
    /* It really is alice talking. */
    redlock_lock *l = NULL;
    assert_int_equal(redlock_acquire(c, "auth:alice2", 30000, 0, &l), REDLOCK_OK);
    redisReply *r = rt_cmd(&G->pw, "CLIENT LIST");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(r->str, "user=alice"));
    freeReplyObject(r);
    assert_int_equal(redlock_release(l), REDLOCK_OK);
    free_client(c);
}

static void acl_wrong_password(void **state)
{
    (void)state;
    acl(&G->pw, "alice2 on >alicepw2 ~* &* +@all");
    char url[160], where[64];
    tcp_url(url, sizeof url, "alice2:zz-not-it-zz", &G->pw, NULL);
    where_of(where, sizeof where, &G->pw);
    connect_fails(url, REDLOCK_AUTH, where,
                  (const char *const[]){"zz-not-it-zz", "alicepw2", PASSWORD, NULL});
    /* An unknown user too. */
    tcp_url(url, sizeof url, "nobody:alicepw2", &G->pw, NULL);
    connect_fails(url, REDLOCK_AUTH, where,
                  (const char *const[]){"alicepw2", PASSWORD, NULL});
    /* A disabled user. */
    acl(&G->pw, "carl off >carlpw ~* +@all");
    tcp_url(url, sizeof url, "carl:carlpw", &G->pw, NULL);
    connect_fails(url, REDLOCK_AUTH, where, (const char *const[]){"carlpw", NULL});
}

/* A user who may not run scripts: the library loads its scripts at connect,
 * so connecting is refused, clearly, as AUTH. */
static void acl_user_without_scripts(void **state)
{
    (void)state;
    acl(&G->pw, "bob on >bobpw ~* &* +@all -evalsha -eval -script");
    char url[160], where[64];
    tcp_url(url, sizeof url, "bob:bobpw", &G->pw, NULL);
    where_of(where, sizeof where, &G->pw);
    connect_fails(url, REDLOCK_AUTH, where, (const char *const[]){"bobpw", NULL});
    assert_non_null(strstr(redlock_last_error(), "NOPERM"));
}

/* A user who may run scripts but not SET: acquire is refused as AUTH and
 * leaves no key. */
static void acl_user_without_set(void **state)
{
    (void)state;
    acl(&G->pw, "dave on >davepw ~* &* +@all -set");
    char url[160];
    tcp_url(url, sizeof url, "dave:davepw", &G->pw, NULL);
    redlock_status st;
    redlock_client *c = try_connect(url, &st);
    if (c == NULL) { /* refusing at connect would be as clear */
        print_message("dave refused at connect: %s\n", redlock_last_error());
        assert_int_equal(st, REDLOCK_AUTH);
        return;
    }
    redlock_lock *l = NULL;
    st = redlock_acquire(c, "auth:dave", 30000, 0, &l);
    print_message("acquire without SET: %s: %s\n", redlock_strerror(st),
                  redlock_last_error());
    assert_int_equal(st, REDLOCK_AUTH);
    assert_null(l);
    assert_non_null(strstr(redlock_last_error(), "NOPERM"));
    assert_null(strstr(redlock_last_error(), "davepw"));
    assert_not_in_db(&G->pw, 0, "auth:dave");
    free_client(c);
}

/* A user limited to some keys. */
static void acl_user_key_pattern(void **state)
{
    (void)state;
    acl(&G->pw, "erin on >erinpw ~allowed:* &* +@all");
    char url[160];
    tcp_url(url, sizeof url, "erin:erinpw", &G->pw, NULL);
    redlock_client *c = must_connect(url);
    lock_roundtrip(c, &G->pw, 0, "allowed:erin");
    redlock_lock *l = NULL;
    redlock_status st = redlock_acquire(c, "forbidden:erin", 30000, 0, &l);
    print_message("acquire of a forbidden key: %s: %s\n", redlock_strerror(st),
                  redlock_last_error());
    assert_int_equal(st, REDLOCK_AUTH);
    assert_not_in_db(&G->pw, 0, "forbidden:erin");
    char tok[64];
    assert_int_equal(redlock_inspect(c, "forbidden:erin", tok, sizeof tok, NULL),
                     REDLOCK_AUTH);
    free_client(c);
}

/* ---- databases ------------------------------------------------------------ */

static void db_select(void **state)
{
    (void)state;
    char url[160];
    tcp_url(url, sizeof url, ":" PASSWORD, &G->pw, "/3");
    redlock_client *c = must_connect(url);
    lock_roundtrip(c, &G->pw, 3, "auth:db3");
    free_client(c);
    /* And on a server without a password. */
    tcp_url(url, sizeof url, NULL, &G->open, "/5");
    c = must_connect(url);
    lock_roundtrip(c, &G->open, 5, "auth:db5");
    free_client(c);
}

static void db_out_of_range(void **state)
{
    (void)state;
    char url[160], where[64];
    tcp_url(url, sizeof url, ":" PASSWORD, &G->pw, "/99");
    where_of(where, sizeof where, &G->pw);
    connect_fails(url, REDLOCK_SERVER, where, (const char *const[]){PASSWORD, NULL});
    assert_non_null(strstr(redlock_last_error(), "SELECT"));
    tcp_url(url, sizeof url, NULL, &G->open, "/99");
    where_of(where, sizeof where, &G->open);
    connect_fails(url, REDLOCK_SERVER, where, NULL);
    assert_non_null(strstr(redlock_last_error(), "SELECT"));
}

/* ---- unix sockets ----------------------------------------------------------- */

static void unix_socket(void **state)
{
    (void)state;
    redlock_client *c = must_connect(G->open.unix_url);
    lock_roundtrip(c, &G->open, 0, "auth:unix");
    free_client(c);

    char url[256];
    snprintf(url, sizeof url, "%s?db=2", G->open.unix_url);
    c = must_connect(url);
    lock_roundtrip(c, &G->open, 2, "auth:unix-db2");
    free_client(c);
}

static void unix_socket_password(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof url, "unix://:%s@%s?db=2", PASSWORD, G->pw.sock);
    redlock_client *c = must_connect(url);
    lock_roundtrip(c, &G->pw, 2, "auth:unix-pw-db2");
    free_client(c);

    snprintf(url, sizeof url, "unix://:%s@%s", PASSWORD, G->pw.sock);
    c = must_connect(url);
    lock_roundtrip(c, &G->pw, 0, "auth:unix-pw");
    free_client(c);

    /* ACL user over the socket. */
    acl(&G->pw, "frank on >frankpw ~* &* +@all");
    snprintf(url, sizeof url, "unix://frank:frankpw@%s?db=1", G->pw.sock);
    c = must_connect(url);
    lock_roundtrip(c, &G->pw, 1, "auth:unix-frank");
    free_client(c);

    /* Wrong and missing passwords. */
    snprintf(url, sizeof url, "unix://:zz-bad-zz@%s", G->pw.sock);
    connect_fails(url, REDLOCK_AUTH, G->pw.sock,
                  (const char *const[]){"zz-bad-zz", PASSWORD, NULL});
    connect_fails(G->pw.unix_url, REDLOCK_AUTH, G->pw.sock,
                  (const char *const[]){PASSWORD, NULL});
}

/* ---- reconnects replay AUTH and SELECT ---------------------------------- */

static long long kill_normal_clients(rt_server *s)
{
    redisReply *r = rt_cmd(s, "CLIENT KILL TYPE normal");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static void reconnect_replays_auth_and_select(void **state)
{
    (void)state;
    char url[160];
    tcp_url(url, sizeof url, ":" PASSWORD, &G->pw, "/2");
    redlock_client *c = must_connect(url);
    redlock_lock *l1 = NULL, *l2 = NULL;
    assert_int_equal(redlock_acquire(c, "auth:re1", 30000, 0, &l1), REDLOCK_OK);
    assert_in_db(&G->pw, 2, "auth:re1", redlock_token(l1));

    assert_true(kill_normal_clients(&G->pw) >= 1); /* ours among them */

    /* The pooled connection is dead: it is replaced before use, and the
     * new one authenticates and selects, so the next call works. */
    redlock_status st = redlock_acquire(c, "auth:re2", 30000, 0, &l2);
    if (st != REDLOCK_OK)
        fail_msg("acquire after CLIENT KILL: %s: %s", redlock_strerror(st),
                 redlock_last_error());
    assert_in_db(&G->pw, 2, "auth:re2", redlock_token(l2));
    assert_not_in_db(&G->pw, 0, "auth:re2");

    /* Once more, with the release as the first call afterwards. */
    assert_true(kill_normal_clients(&G->pw) >= 1);
    st = redlock_extend(l2, 25000);
    if (st != REDLOCK_OK)
        fail_msg("extend after CLIENT KILL: %s: %s", redlock_strerror(st),
                 redlock_last_error());
    assert_int_equal(redlock_release(l1), REDLOCK_OK);
    assert_not_in_db(&G->pw, 2, "auth:re1");
    assert_int_equal(redlock_release(l2), REDLOCK_OK);
    assert_not_in_db(&G->pw, 2, "auth:re2");
    free_client(c);
}

/* A killed idle connection must be replaced without failing the caller's
 * call (design: "reconnects a broken one on next use"). */
static void reconnect_is_transparent(void **state)
{
    (void)state;
    char url[160];
    tcp_url(url, sizeof url, ":" PASSWORD, &G->pw, "/2");
    redlock_client *c = must_connect(url);
    redlock_lock *l = NULL;
    assert_int_equal(redlock_acquire(c, "auth:tr", 30000, 0, &l), REDLOCK_OK);
    assert_true(kill_normal_clients(&G->pw) >= 1);
    redlock_status st = redlock_release(l);
    if (st != REDLOCK_OK)
        print_error("release after CLIENT KILL: %s: %s\n", redlock_strerror(st),
                    redlock_last_error());
    assert_int_equal(st, REDLOCK_OK);
    assert_not_in_db(&G->pw, 2, "auth:tr");
    free_client(c);
}

int main(void)
{
#define T(f) cmocka_unit_test_teardown(f, free_clients)
    const struct CMUnitTest tests[] = {
        T(right_password),
        T(wrong_password),
        T(missing_password),
        T(password_to_open_server),
        T(percent_encoded_password),
        T(acl_user),
        T(acl_wrong_password),
        T(acl_user_without_scripts),
        T(acl_user_without_set),
        T(acl_user_key_pattern),
        T(db_select),
        T(db_out_of_range),
        T(unix_socket),
        T(unix_socket_password),
        T(reconnect_replays_auth_and_select),
        T(reconnect_is_transparent),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
