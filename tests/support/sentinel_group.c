/* Test helper: a master, two replicas and three sentinels (see the header). */
#include "sentinel_group.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Every sentinel still running at exit() is killed, and every directory
 * not yet removed is: a failed cmocka test skips its group's stop. */
static pid_t live[64];
static char live_dir[64][64];

static void remove_dir(const char *dir)
{
    char cmd[96]; /* dirs are "/tmp/redlock-sentinel-XXXXXX" */
    snprintf(cmd, sizeof cmd, "rm -rf '%.63s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "sentinel_group: cannot remove %s\n", dir);
}

static void kill_live(void)
{
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    for (size_t i = 0; i < sizeof live_dir / sizeof live_dir[0]; i++)
        if (live_dir[i][0]) {
            remove_dir(live_dir[i]);
            live_dir[i][0] = '\0';
        }
}

static void at_exit_once(void)
{
    static int registered;
    if (!registered) {
        atexit(kill_live);
        registered = 1;
    }
}

static void track(pid_t pid, int add)
{
    at_exit_once();
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (add ? live[i] == 0 : live[i] == pid) {
            live[i] = add ? pid : 0;
            return;
        }
}

static void track_dir(const char *dir, int add)
{
    at_exit_once();
    for (size_t i = 0; i < sizeof live_dir / sizeof live_dir[0]; i++)
        if (add ? live_dir[i][0] == '\0' : strcmp(live_dir[i], dir) == 0) {
            if (add)
                snprintf(live_dir[i], sizeof live_dir[i], "%s", dir);
            else
                live_dir[i][0] = '\0';
            return;
        }
}

static redisReply *vcmd(int port, const char *fmt, va_list ap)
{
    struct timeval tv = {2, 0};
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!ctx || ctx->err) {
        if (ctx)
            redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    redisReply *r = redisvCommand(ctx, fmt, ap);
    redisFree(ctx);
    return r;
}

redisReply *rt_sentinel_cmd(rt_sentinel_group *g, int i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(g->sen[i].port, fmt, ap);
    va_end(ap);
    return r;
}

static int start_sentinel(rt_sentinel_group *g, rt_sentinel *s)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/redlock-sentinel-XXXXXX");
    if (!mkdtemp(s->dir)) {
        s->dir[0] = '\0';
        return -1;
    }
    track_dir(s->dir, 1);
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = rt_free_port();
        s->tls_port = 0;
        if (g->tls)
            do /* two distinct ports (nothing holds the first one yet) */
                s->tls_port = rt_free_port();
            while (s->tls_port == s->port && s->port > 0);
        char conf[128], log[128];
        snprintf(conf, sizeof conf, "%s/sentinel.conf", s->dir);
        snprintf(log, sizeof log, "%s/log", s->dir);
        FILE *f = fopen(conf, "w");
        if (!f)
            return -1;
        fprintf(f,
                "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n",
                s->port, s->dir, log);
        /* tls-replication makes a sentinel's own links (to the servers,
         * whose only TCP port is TLS, and to the other sentinels) TLS, and
         * makes it announce tls-port to them: the sentinels find each
         * other on their TLS ports.  The servers' certificate serves as
         * its client certificate; the library presents none. */
        if (g->tls)
            fprintf(f,
                    "tls-port %d\ntls-replication yes\n"
                    "tls-cert-file %s/server.crt\n"
                    "tls-key-file %s/server.key\n"
                    "tls-ca-cert-file %s/ca.crt\n"
                    "tls-auth-clients no\n",
                    s->tls_port, g->certdir, g->certdir, g->certdir);
        fprintf(f,
                "sentinel monitor %s 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds %s 1000\n"
                "sentinel failover-timeout %s 4000\n"
                "sentinel parallel-syncs %s 2\n",
                g->name, g->srv[0].port, g->name, g->name, g->name);
        fclose(f);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(127);
            int fd = open("/dev/null", O_RDWR);
            if (fd >= 0) {
                dup2(fd, 0);
                dup2(fd, 1);
                dup2(fd, 2);
            }
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            execlp("redis-sentinel", "redis-sentinel", conf, (char *)NULL);
            execlp("redis-server", "redis-server", conf, "--sentinel",
                   (char *)NULL);
            _exit(127);
        }
        s->pid = pid;
        track(pid, 1);
        for (long long end = rt_now_ms() + 5000; rt_now_ms() < end;) {
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                track(pid, 0);
                s->pid = 0;
                break;
            }
            redisReply *r = rt_sentinel_cmd(g, (int)(s - g->sen), "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            if (ok)
                return 0;
            rt_sleep_ms(20);
        }
        if (s->pid) {
            rt_sentinel_kill(g, (int)(s - g->sen));
            return -1;
        }
    }
    return -1;
}

static long long count_of(redisReply *r)
{
    long long n = r && r->type == REDIS_REPLY_ARRAY ? (long long)r->elements
                                                     : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

/* Every sentinel knows 2 replicas and 2 other sentinels. */
static int group_ready(rt_sentinel_group *g)
{
    for (int i = 0; i < RT_SENTINELS; i++) {
        if (count_of(rt_sentinel_cmd(g, i, "SENTINEL REPLICAS %s", g->name)) != 2 ||
            count_of(rt_sentinel_cmd(g, i, "SENTINEL SENTINELS %s", g->name)) != 2)
            return 0;
    }
    return 1;
}

static int replicas_linked(rt_sentinel_group *g)
{
    for (int i = 1; i < 3; i++) {
        redisReply *r = rt_cmd(&g->srv[i], "INFO replication");
        int up = r && r->type == REDIS_REPLY_STRING &&
                 strstr(r->str, "master_link_status:up");
        if (r)
            freeReplyObject(r);
        if (!up)
            return 0;
    }
    return 1;
}

static const char *tls_certdir(void)
{
    const char *d = getenv("REDLOCK_TEST_TLS");
    return d && d[0] ? d : NULL;
}

const char *rt_sentinel_scheme(void)
{
    return tls_certdir() ? "rediss+sentinel" : "redis+sentinel";
}

int rt_sentinel_group_start(rt_sentinel_group *g, const char *name)
{
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    const char *certdir = tls_certdir();
    if (certdir) {
        if (strlen(certdir) >= sizeof g->certdir) {
            fprintf(stderr, "sentinel_group: certificate path too long\n");
            return -1;
        }
        g->tls = 1;
        snprintf(g->certdir, sizeof g->certdir, "%s", certdir);
    }
    /* rt_server_start follows $REDLOCK_TEST_TLS too: in TLS mode the
     * servers listen only for TLS and replicate over TLS
     * (--tls-replication yes is among the harness's TLS defaults). */
    /* Full syncs at once (Redis 7 waits 5 s for more replicas): else a
     * failover's end, and its +switch-master, waits for them. */
    const char *margs[] = {"--repl-diskless-sync-delay", "0", NULL};
    if (rt_server_start(&g->srv[0], margs) != 0)
        return -1;
    char mport[16];
    snprintf(mport, sizeof mport, "%d", g->srv[0].port);
    for (int i = 1; i < 3; i++) {
        const char *args[] = {"--replicaof", "127.0.0.1", mport,
                              "--replica-priority", i == 2 ? "0" : "100",
                              "--repl-diskless-sync-delay", "0", NULL};
        if (rt_server_start(&g->srv[i], args) != 0)
            goto fail;
    }
    /* Linked before the sentinels' first INFO, which finds the replicas
     * at once instead of ten seconds later. */
    long long end = rt_now_ms() + 10000;
    while (!replicas_linked(g) && rt_now_ms() < end)
        rt_sleep_ms(20);
    for (int i = 0; i < RT_SENTINELS; i++)
        if (start_sentinel(g, &g->sen[i]) != 0) {
            fprintf(stderr, "sentinel_group: a sentinel did not start\n");
            goto fail;
        }
    end = rt_now_ms() + 20000;
    while (!group_ready(g)) {
        if (rt_now_ms() >= end) {
            fprintf(stderr, "sentinel_group: sentinels not ready in 20 s\n");
            goto fail;
        }
        rt_sleep_ms(50);
    }
    size_t o = (size_t)snprintf(g->url, sizeof g->url, "%s://",
                                rt_sentinel_scheme());
    for (int i = 0; i < RT_SENTINELS; i++)
        o += (size_t)snprintf(g->url + o, sizeof g->url - o, "%s127.0.0.1:%d",
                              i ? "," : "",
                              g->tls ? g->sen[i].tls_port : g->sen[i].port);
    snprintf(g->url + o, sizeof g->url - o, "/%s", g->name);
    return 0;
fail:
    rt_sentinel_group_stop(g);
    return -1;
}

void rt_sentinel_kill(rt_sentinel_group *g, int i)
{
    for (int k = 0; k < RT_SENTINELS; k++) {
        rt_sentinel *s = &g->sen[k];
        if ((i >= 0 && k != i) || s->pid <= 0)
            continue;
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        track(s->pid, 0);
        s->pid = 0;
    }
}

void rt_sentinel_group_stop(rt_sentinel_group *g)
{
    rt_sentinel_kill(g, -1);
    for (int k = 0; k < RT_SENTINELS; k++)
        if (g->sen[k].dir[0]) {
            remove_dir(g->sen[k].dir);
            track_dir(g->sen[k].dir, 0);
            g->sen[k].dir[0] = '\0';
        }
    for (int i = 0; i < 3; i++)
        rt_server_stop(&g->srv[i]);
}

int rt_sentinel_master_port(rt_sentinel_group *g, int i)
{
    redisReply *r =
        rt_sentinel_cmd(g, i, "SENTINEL GET-MASTER-ADDR-BY-NAME %s", g->name);
    int port = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        port = atoi(r->element[1]->str);
    if (r)
        freeReplyObject(r);
    return port;
}

int rt_sentinel_index(const rt_sentinel_group *g, int port)
{
    for (int i = 0; i < 3; i++)
        if (g->srv[i].port == port)
            return i;
    return -1;
}

static int is_master(rt_server *s)
{
    redisReply *r = rt_cmd(s, "ROLE");
    int yes = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
              strcmp(r->element[0]->str, "master") == 0;
    if (r)
        freeReplyObject(r);
    return yes;
}

int rt_sentinel_wait_switch(rt_sentinel_group *g, int old, int timeout_ms)
{
    for (long long end = rt_now_ms() + timeout_ms; rt_now_ms() < end; rt_sleep_ms(50)) {
        int idx = -1, agree = 1;
        for (int i = 0; i < RT_SENTINELS && agree; i++) {
            if (g->sen[i].pid <= 0)
                continue;
            int k = rt_sentinel_index(g, rt_sentinel_master_port(g, i));
            if (k < 0 || k == old || (idx >= 0 && k != idx))
                agree = 0;
            idx = k;
        }
        if (agree && idx >= 0 && is_master(&g->srv[idx]))
            return idx;
    }
    return -1;
}

int rt_sentinel_failover(rt_sentinel_group *g, int timeout_ms)
{
    int old = rt_sentinel_index(g, rt_sentinel_master_port(g, 0));
    long long end = rt_now_ms() + timeout_ms;
    for (;;) { /* -NOGOODSLAVE until a sentinel has seen the replicas */
        redisReply *r = rt_sentinel_cmd(g, 0, "SENTINEL FAILOVER %s", g->name);
        int ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
        if (ok)
            break;
        if (rt_now_ms() >= end)
            return -1;
        rt_sleep_ms(200);
    }
    return rt_sentinel_wait_switch(g, old, (int)(end - rt_now_ms()));
}
