/* Test helper: a Redis Cluster of six nodes on loopback (see cluster.h). */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000  /* the cluster settled after create */
#define CLI_TIMEOUT_MS 30000    /* redis-cli --cluster create */
#define FINISH_TIMEOUT_MS 10000 /* everyone knows a slot's new owner */
#define KEYS_TIMEOUT_MS 30000   /* rt_cluster_migrate_keys in all */
#define POLL_MS 50
#define MAX_USER_ARGS 12
#define MIGRATE_BATCH 100

/* ---- small utilities ------------------------------------------------------ */

static const char *tls_certdir(void)
{
    const char *d = getenv("REDLOCK_TEST_TLS");
    return d != NULL && d[0] != '\0' ? d : NULL;
}

const char *rt_cluster_scheme(void)
{
    return tls_certdir() != NULL ? "rediss+cluster" : "redis+cluster";
}

static int valid(const rt_cluster *c, int i)
{
    return c != NULL && i >= 0 && i < RT_CLUSTER_NODES;
}

int rt_cluster_alive(const rt_cluster *c, int i)
{
    return valid(c, i) && c->srv[i].pid > 0;
}

int rt_cluster_index_of_id(const rt_cluster *c, const char *id, size_t len)
{
    if (id == NULL || len != 40)
        return -1;
    for (int i = 0; i < RT_CLUSTER_NODES; i++)
        if (c->id[i][0] != '\0' && memcmp(c->id[i], id, 40) == 0)
            return i;
    return -1;
}

int rt_cluster_index_of_port(const rt_cluster *c, int port)
{
    for (int i = 0; i < RT_CLUSTER_NODES; i++)
        if (port > 0 && c->srv[i].port == port)
            return i;
    return -1;
}

/* Print the end of a file on stderr. */
static void dump_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > 4096)
        fseek(f, (long)st.st_size - 4096, SEEK_SET);
    fprintf(stderr, "---- %s (tail) ----\n", path);
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "---- end ----\n");
    fclose(f);
}

/* ---- commands on cached connections ---------------------------------------- */

static void drop(rt_cluster *c, int i)
{
    if (c->ctx[i] != NULL) {
        redisFree(c->ctx[i]);
        c->ctx[i] = NULL;
    }
}

/* The cached connection to node i, made (and authenticated) if need be;
 * *fresh says it was just made.  NULL when the node cannot be reached. */
static redisContext *node_ctx(rt_cluster *c, int i, int *fresh)
{
    *fresh = 0;
    if (c->ctx[i] != NULL && c->ctx[i]->err != 0)
        drop(c, i);
    if (c->ctx[i] != NULL)
        return c->ctx[i];
    if (!rt_cluster_alive(c, i))
        return NULL;
    rt_server *s = &c->srv[i];
    redisContext *x = rt_connect(s);
    if (x == NULL || x->err != 0) {
        if (x != NULL)
            redisFree(x);
        return NULL;
    }
    /* Not inherited by a node started (or restarted) later: it would keep
     * the connection open after redisFree(). */
    fcntl(x->fd, F_SETFD, FD_CLOEXEC);
    if (s->password[0] != '\0') {
        redisReply *r = s->user[0] != '\0'
                            ? redisCommand(x, "AUTH %s %s", s->user, s->password)
                            : redisCommand(x, "AUTH %s", s->password);
        int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r != NULL && !ok)
            fprintf(stderr, "rt_cluster: AUTH on node %d: %s\n", i,
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        if (r != NULL)
            freeReplyObject(r);
        if (!ok) {
            redisFree(x);
            return NULL;
        }
    }
    c->ctx[i] = x;
    *fresh = 1;
    return x;
}

/* Send a formatted command to node i; see rt_cluster_cmd for the retry. */
static redisReply *send_formatted(rt_cluster *c, int i, const char *cmd, size_t len)
{
    rt_pipe_guard g;
    rt_pipe_block(&g);
    redisReply *r = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh;
        redisContext *x = node_ctx(c, i, &fresh);
        if (x == NULL)
            break;
        void *reply = NULL;
        if (redisAppendFormattedCommand(x, cmd, len) == REDIS_OK &&
            redisGetReply(x, &reply) == REDIS_OK) {
            r = reply;
            break;
        }
        /* A reused connection that the node closed (EOF, reset, broken
         * pipe): the node went away under it, so the command was never
         * run; a timeout is not retried. */
        int gone = x->err == REDIS_ERR_EOF ||
                   (x->err == REDIS_ERR_IO && (errno == ECONNRESET || errno == EPIPE));
        drop(c, i);
        if (fresh || !gone)
            break;
    }
    rt_pipe_unblock(&g);
    return r;
}

static redisReply *vcmd(rt_cluster *c, int i, const char *fmt, va_list ap)
{
    if (!valid(c, i))
        return NULL;
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    if (len < 0 || cmd == NULL)
        return NULL;
    redisReply *r = send_formatted(c, i, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return r;
}

redisReply *rt_cluster_cmd(rt_cluster *c, int i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, i, fmt, ap);
    va_end(ap);
    return r;
}

redisReply *rt_cluster_cmd_argv(rt_cluster *c, int i, int argc, const char **argv,
                                const size_t *argvlen)
{
    if (!valid(c, i))
        return NULL;
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0 || cmd == NULL)
        return NULL;
    redisReply *r = send_formatted(c, i, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return r;
}

/* 1 for the status reply OK (the reply is freed); else 0, with what the
 * node said on stderr. */
static int ok_reply(redisReply *r, int node, const char *what)
{
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
    if (!ok)
        fprintf(stderr, "rt_cluster: %s on node %d: %s\n", what, node,
                r == NULL                        ? "no answer"
                : r->type == REDIS_REPLY_ERROR   ? r->str
                : r->type == REDIS_REPLY_STATUS  ? r->str
                                                 : "unexpected reply");
    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

/* ---- what a node says --------------------------------------------------------- */

/* One node's view, as the waits need it. */
typedef struct {
    int up;         /* answered every question */
    int state_ok;   /* cluster_state:ok */
    int master;     /* its "myself" line says master */
    int master_idx; /* a replica's master, or -1 */
    int link_up;    /* master_link_status:up (replicas) */
    int knows;      /* running nodes it lists without fail/fail?/handshake/noaddr */
    int bad;        /* a running node it flags (first one), or -1 */
    short owner[RT_CLUSTER_SLOTS];
} node_view;

/* 1 when the comma-separated flags contain exactly `flag`. */
static int has_flag(const char *flags, size_t len, const char *flag)
{
    size_t fl = strlen(flag);
    const char *p = flags, *end = flags + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t n = comma != NULL ? (size_t)(comma - p) : (size_t)(end - p);
        if (n == fl && memcmp(p, flag, n) == 0)
            return 1;
        p += n + 1;
    }
    return 0;
}

/* The n-th space-separated field of a line [line, end): start and length. */
static int field(const char *line, const char *end, int n, const char **f, size_t *len)
{
    const char *p = line;
    for (int k = 0;; k++) {
        while (p < end && *p == ' ')
            p++;
        if (p >= end)
            return -1;
        const char *q = p;
        while (q < end && *q != ' ')
            q++;
        if (k == n) {
            *f = p;
            *len = (size_t)(q - p);
            return 0;
        }
        p = q;
    }
}

/* CLUSTER NODES of node i: role, and what it thinks of the running nodes.
 * 0, or -1 when it did not answer. */
static int look_nodes(rt_cluster *c, int i, node_view *v)
{
    redisReply *r = rt_cluster_cmd(c, i, "CLUSTER NODES");
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        if (r != NULL)
            freeReplyObject(r);
        return -1;
    }
    int seen_self = 0;
    v->master = 0;
    v->master_idx = -1;
    v->knows = 0;
    v->bad = -1;
    const char *p = r->str, *end = r->str + r->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        const char *id, *flags, *master;
        size_t idl, fl, ml;
        if (field(p, le, 0, &id, &idl) == 0 && field(p, le, 2, &flags, &fl) == 0 &&
            field(p, le, 3, &master, &ml) == 0) {
            int k = rt_cluster_index_of_id(c, id, idl);
            if (has_flag(flags, fl, "myself")) {
                seen_self = 1;
                v->master = has_flag(flags, fl, "master");
                if (has_flag(flags, fl, "slave"))
                    v->master_idx = rt_cluster_index_of_id(c, master, ml);
            } else if (k >= 0 && rt_cluster_alive(c, k)) {
                if (has_flag(flags, fl, "fail") || has_flag(flags, fl, "fail?") ||
                    has_flag(flags, fl, "handshake") || has_flag(flags, fl, "noaddr")) {
                    if (v->bad < 0)
                        v->bad = k;
                } else {
                    v->knows++;
                }
            }
        }
        p = le + 1;
    }
    freeReplyObject(r);
    return seen_self ? 0 : -1;
}

/* CLUSTER SLOTS of node i into owner[].  0, or -1. */
static int look_slots(rt_cluster *c, int i, short *owner)
{
    for (int s = 0; s < RT_CLUSTER_SLOTS; s++)
        owner[s] = -1;
    redisReply *r = rt_cluster_cmd(c, i, "CLUSTER SLOTS");
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r != NULL)
            freeReplyObject(r);
        return -1;
    }
    for (size_t k = 0; k < r->elements; k++) {
        redisReply *e = r->element[k];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 3 ||
            e->element[2]->element[2]->type != REDIS_REPLY_STRING)
            continue;
        long long from = e->element[0]->integer, to = e->element[1]->integer;
        redisReply *id = e->element[2]->element[2];
        int who = rt_cluster_index_of_id(c, id->str, id->len);
        if (from < 0)
            from = 0;
        if (to >= RT_CLUSTER_SLOTS)
            to = RT_CLUSTER_SLOTS - 1;
        for (long long s = from; s <= to; s++)
            owner[s] = (short)who;
    }
    freeReplyObject(r);
    return 0;
}

/* 1 when the answer of node i to cmd contains `what`; -1: no answer. */
static int info_has(rt_cluster *c, int i, const char *cmd, const char *what)
{
    redisReply *r = rt_cluster_cmd(c, i, cmd);
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        if (r != NULL)
            freeReplyObject(r);
        return -1;
    }
    int yes = strstr(r->str, what) != NULL;
    freeReplyObject(r);
    return yes;
}

static void set_role(rt_cluster *c, int i, const node_view *v, int answered)
{
    if (!rt_cluster_alive(c, i)) {
        c->role[i] = RT_CLUSTER_DOWN;
        c->master_of[i] = -1;
    } else if (!answered) {
        c->role[i] = RT_CLUSTER_UNKNOWN;
        c->master_of[i] = -1;
    } else {
        c->role[i] = v->master ? RT_CLUSTER_MASTER : RT_CLUSTER_REPLICA;
        c->master_of[i] = v->master ? -1 : v->master_idx;
    }
}

int rt_cluster_refresh(rt_cluster *c)
{
    int rc = 0;
    node_view *v = malloc(sizeof *v);
    if (v == NULL)
        return -1;
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        int answered = rt_cluster_alive(c, i) && look_nodes(c, i, v) == 0;
        if (rt_cluster_alive(c, i) && !answered)
            rc = -1;
        set_role(c, i, v, answered);
    }
    free(v);
    return rc;
}

/* ---- waiting until the cluster is as wanted --------------------------------- */

#define W_AGREE 1 /* every running node maps the slots alike */
#define W_COVER 2 /* ... and all of them to some node */
#define W_STATE 4 /* cluster_state:ok everywhere */
#define W_KNOWS 8 /* every running node knows the others, none flagged */
#define W_LINKS 16 /* every running replica's link is up */
#define W_ALL (W_AGREE | W_COVER | W_STATE | W_KNOWS | W_LINKS)

/* A further condition on the settled views (v[ref] a running node's): >= 0
 * when met (what the wait returns), -1 not yet, with why written. */
typedef int (*wait_pred)(rt_cluster *c, const node_view *v, int ref, void *arg,
                         char *why, size_t wlen);

/* Look at every running node once; 1 when `want` holds, else 0 with why.
 * Refreshes role[] and master_of[] on the way.  *ref: a running node. */
static int settled(rt_cluster *c, node_view *v, int want, int *ref, char *why,
                   size_t wlen)
{
    int live = 0;
    for (int i = 0; i < RT_CLUSTER_NODES; i++)
        live += rt_cluster_alive(c, i);
    int result = 1;
    *ref = -1;
    why[0] = '\0';
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        node_view *w = &v[i];
        w->up = 0;
        if (!rt_cluster_alive(c, i)) {
            set_role(c, i, w, 0);
            continue;
        }
        if (look_nodes(c, i, w) != 0 || look_slots(c, i, w->owner) != 0) {
            set_role(c, i, w, 0);
            if (result)
                snprintf(why, wlen, "node %d did not answer", i);
            result = 0;
            continue;
        }
        set_role(c, i, w, 1);
        w->up = 1;
        w->state_ok = !(want & W_STATE) ||
                      info_has(c, i, "CLUSTER INFO", "cluster_state:ok") == 1;
        w->link_up = !(want & W_LINKS) || w->master ||
                     info_has(c, i, "INFO replication", "master_link_status:up") == 1;
        if (*ref < 0)
            *ref = i;
        if (!result)
            continue;
        if ((want & W_STATE) && !w->state_ok) {
            snprintf(why, wlen, "node %d: cluster_state is not ok", i);
            result = 0;
        } else if ((want & W_KNOWS) && w->bad >= 0) {
            snprintf(why, wlen, "node %d flags node %d (fail, fail?, handshake or noaddr)", i,
                     w->bad);
            result = 0;
        } else if ((want & W_KNOWS) && w->knows != live - 1) {
            snprintf(why, wlen, "node %d knows %d of the %d other running nodes", i, w->knows,
                     live - 1);
            result = 0;
        } else if ((want & W_LINKS) && !w->link_up) {
            snprintf(why, wlen, "node %d (replica of %d): master_link_status not up", i,
                     w->master_idx);
            result = 0;
        } else if ((want & W_AGREE) && *ref != i &&
                   memcmp(w->owner, v[*ref].owner, sizeof w->owner) != 0) {
            int s = 0;
            while (s < RT_CLUSTER_SLOTS && w->owner[s] == v[*ref].owner[s])
                s++;
            snprintf(why, wlen, "nodes %d and %d disagree (slot %d: %d or %d)", *ref, i, s,
                     v[*ref].owner[s], w->owner[s]);
            result = 0;
        } else if (want & W_COVER) {
            for (int s = 0; s < RT_CLUSTER_SLOTS; s++)
                if (w->owner[s] < 0) {
                    snprintf(why, wlen, "node %d: slot %d is not covered", i, s);
                    result = 0;
                    break;
                }
        }
    }
    if (*ref < 0) {
        if (result)
            snprintf(why, wlen, "no node is running");
        result = 0;
    }
    return result;
}

static int wait_for(rt_cluster *c, int timeout_ms, int want, wait_pred pred, void *arg,
                    const char *what)
{
    node_view *v = calloc(RT_CLUSTER_NODES, sizeof *v);
    if (v == NULL)
        return -1;
    int64_t end = rt_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    char why[256];
    int result;
    for (;;) {
        int ref;
        result = -1;
        if (settled(c, v, want, &ref, why, sizeof why)) {
            result = pred != NULL ? pred(c, v, ref, arg, why, sizeof why) : 0;
            if (result >= 0)
                break;
        }
        if (rt_now_ms() >= end) {
            fprintf(stderr, "rt_cluster: %s: not within %d ms: %s\n", what, timeout_ms, why);
            break;
        }
        rt_sleep_ms(POLL_MS);
    }
    free(v);
    return result;
}

int rt_cluster_wait_agree(rt_cluster *c, int timeout_ms)
{
    return wait_for(c, timeout_ms, W_AGREE, NULL, NULL, "wait_agree");
}

int rt_cluster_wait_ok(rt_cluster *c, int timeout_ms)
{
    return wait_for(c, timeout_ms, W_ALL, NULL, NULL, "wait_ok");
}

/* ---- starting and stopping ------------------------------------------------------ */

/* redis-cli: $REDLOCK_TEST_REDIS_CLI, next to redis-server, or on $PATH. */
static int find_cli(char *out, size_t len)
{
    const char *env = getenv("REDLOCK_TEST_REDIS_CLI");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, len, "%s", env);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    const char *srv = getenv("REDLOCK_TEST_REDIS_SERVER");
#ifdef RT_REDIS_SERVER_PATH
    if (srv == NULL || srv[0] == '\0')
        srv = RT_REDIS_SERVER_PATH;
#endif
    const char *slash = srv != NULL ? strrchr(srv, '/') : NULL;
    if (slash != NULL && (size_t)(slash - srv) + 12 < len) {
        snprintf(out, len, "%.*s/redis-cli", (int)(slash - srv), srv);
        if (access(out, X_OK) == 0)
            return 0;
    }
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path != '\0') {
        size_t n = strcspn(path, ":");
        if (n > 0 && n + 12 < len) {
            snprintf(out, len, "%.*s/redis-cli", (int)n, path);
            if (access(out, X_OK) == 0)
                return 0;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return -1;
}

/* Run a program with its output in `log`, dying with this thread, killed
 * after timeout_ms.  0 when it exited with status 0. */
static int run(const char *prog, const char *const *argv, const char *log, int timeout_ms)
{
    int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        fprintf(stderr, "rt_cluster: %s: %s\n", log, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "rt_cluster: fork: %s\n", strerror(errno));
        close(out);
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in >= 0)
            dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    close(out);
    int64_t end = rt_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
            fprintf(stderr, "rt_cluster: %s failed (%s %d)\n", prog,
                    WIFEXITED(status) ? "exit status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            return -1;
        }
        if (w < 0 && errno != EINTR) {
            fprintf(stderr, "rt_cluster: waitpid: %s\n", strerror(errno));
            return -1;
        }
        if (rt_now_ms() >= end) {
            fprintf(stderr, "rt_cluster: %s did not finish within %d ms\n", prog, timeout_ms);
            kill(pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            return -1;
        }
        rt_sleep_ms(20);
    }
}

/* Start node i; a bus port found taken meanwhile is picked again. */
static int start_node(rt_cluster *c, int i, const char *const *extra, const char *password)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int bus = rt_free_port();
        if (bus < 0) {
            fprintf(stderr, "rt_cluster: no free port\n");
            return -1;
        }
        char busbuf[16];
        snprintf(busbuf, sizeof busbuf, "%d", bus);
        const char *args[RT_MAX_EXTRA_ARGS + 1];
        int n = 0;
        args[n++] = "--cluster-enabled";
        args[n++] = "yes";
        args[n++] = "--cluster-config-file"; /* relative to its --dir */
        args[n++] = "nodes.conf";
        args[n++] = "--cluster-port";
        args[n++] = busbuf;
        args[n++] = "--cluster-node-timeout";
        args[n++] = "1000";
        args[n++] = "--cluster-replica-validity-factor";
        args[n++] = "0";
        args[n++] = "--cluster-allow-replica-migration";
        args[n++] = "no";
        args[n++] = "--appendonly";
        args[n++] = "no";
        args[n++] = "--repl-diskless-sync-delay";
        args[n++] = "0";
        if (c->tls) {
            /* --tls-replication yes is among rt_server's TLS defaults. */
            args[n++] = "--tls-cluster";
            args[n++] = "yes";
        }
        if (password != NULL) {
            args[n++] = "--masterauth";
            args[n++] = password;
        }
        for (int k = 0; extra != NULL && extra[k] != NULL; k++)
            args[n++] = extra[k];
        args[n] = NULL;
        if (rt_server_start(&c->srv[i], args) == 0) {
            c->bus_port[i] = bus;
            return 0;
        }
    }
    fprintf(stderr, "rt_cluster: node %d did not start\n", i);
    return -1;
}

static int create(rt_cluster *c, const char *cli, const char *password)
{
    const char *certdir = tls_certdir();
    char ca[300], cert[300], key[300], log[128];
    char addr[RT_CLUSTER_NODES][32];
    const char *argv[32];
    int n = 0;
    argv[n++] = cli;
    if (c->tls) {
        snprintf(ca, sizeof ca, "%s/ca.crt", certdir);
        snprintf(cert, sizeof cert, "%s/server.crt", certdir);
        snprintf(key, sizeof key, "%s/server.key", certdir);
        argv[n++] = "--tls";
        argv[n++] = "--cacert";
        argv[n++] = ca;
        argv[n++] = "--cert";
        argv[n++] = cert;
        argv[n++] = "--key";
        argv[n++] = key;
    }
    if (password != NULL) {
        argv[n++] = "-a";
        argv[n++] = password;
        argv[n++] = "--no-auth-warning";
    }
    argv[n++] = "--cluster";
    argv[n++] = "create";
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", c->srv[i].port);
        argv[n++] = addr[i];
    }
    argv[n++] = "--cluster-replicas";
    argv[n++] = "1";
    argv[n++] = "--cluster-yes";
    argv[n] = NULL;
    snprintf(log, sizeof log, "%s/cluster-create.log", c->srv[0].dir);
    if (run(cli, argv, log, CLI_TIMEOUT_MS) != 0) {
        dump_file(log);
        return -1;
    }
    return 0;
}

int rt_cluster_start_args(rt_cluster *c, const char *const *extra_args)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < RT_CLUSTER_NODES; i++)
        c->master_of[i] = -1;
    c->tls = tls_certdir() != NULL;
    const char *password = NULL;
    int nextra = 0;
    for (; extra_args != NULL && extra_args[nextra] != NULL; nextra++)
        if (strcmp(extra_args[nextra], "--requirepass") == 0 && extra_args[nextra + 1] != NULL)
            password = extra_args[nextra + 1];
    if (nextra > MAX_USER_ARGS) {
        fprintf(stderr, "rt_cluster: more than %d extra arguments\n", MAX_USER_ARGS);
        return -1;
    }
    char cli[4096];
    if (find_cli(cli, sizeof cli) != 0) {
        fprintf(stderr, "rt_cluster: redis-cli not found (apt-get install redis-tools, "
                        "or set REDLOCK_TEST_REDIS_CLI)\n");
        return -1;
    }

    for (int i = 0; i < RT_CLUSTER_NODES; i++)
        if (start_node(c, i, extra_args, password) != 0)
            goto fail;
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        redisReply *r = rt_cluster_cmd(c, i, "CLUSTER MYID");
        int ok = r != NULL && r->type == REDIS_REPLY_STRING && r->len == 40;
        if (ok)
            memcpy(c->id[i], r->str, 40);
        if (r != NULL)
            freeReplyObject(r);
        if (!ok) {
            fprintf(stderr, "rt_cluster: CLUSTER MYID on node %d failed\n", i);
            goto fail;
        }
    }
    if (create(c, cli, password) != 0)
        goto fail;
    if (rt_cluster_wait_ok(c, START_TIMEOUT_MS) != 0) {
        dump_file(c->srv[0].log);
        goto fail;
    }

    /* What redis-cli made: srv[0..2] masters, each with one of srv[3..5]. */
    int replicas_of[RT_CLUSTER_NODES] = {0};
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        int want = i < RT_CLUSTER_MASTERS ? RT_CLUSTER_MASTER : RT_CLUSTER_REPLICA;
        if (c->role[i] != want ||
            (want == RT_CLUSTER_REPLICA &&
             (c->master_of[i] < 0 || c->master_of[i] >= RT_CLUSTER_MASTERS))) {
            fprintf(stderr, "rt_cluster: node %d is not what redis-cli was expected to make "
                            "(role %d, master %d)\n", i, c->role[i], c->master_of[i]);
            goto fail;
        }
        if (want == RT_CLUSTER_REPLICA && ++replicas_of[c->master_of[i]] > 1) {
            fprintf(stderr, "rt_cluster: master %d has two replicas\n", c->master_of[i]);
            goto fail;
        }
    }
    size_t o = (size_t)snprintf(c->url, sizeof c->url, "%s://", rt_cluster_scheme());
    for (int i = 0; i < RT_CLUSTER_MASTERS; i++)
        o += (size_t)snprintf(c->url + o, sizeof c->url - o, "%s127.0.0.1:%d", i ? "," : "",
                              c->srv[i].port);
    return 0;
fail:
    rt_cluster_stop(c);
    return -1;
}

int rt_cluster_start(rt_cluster *c)
{
    return rt_cluster_start_args(c, NULL);
}

void rt_cluster_stop(rt_cluster *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        drop(c, i);
        rt_server_stop(&c->srv[i]);
        c->role[i] = RT_CLUSTER_DOWN;
        c->master_of[i] = -1;
    }
}

void rt_cluster_kill(rt_cluster *c, int i)
{
    if (!valid(c, i))
        return;
    if (rt_cluster_alive(c, i))
        rt_cluster_refresh(c);
    drop(c, i);
    rt_server_kill(&c->srv[i]);
    c->role[i] = RT_CLUSTER_DOWN;
    c->master_of[i] = -1;
}

int rt_cluster_restart(rt_cluster *c, int i)
{
    if (!valid(c, i))
        return -1;
    drop(c, i);
    if (rt_server_restart(&c->srv[i]) != 0)
        return -1;
    rt_cluster_refresh(c);
    return 0;
}

/* ---- slots and keys ------------------------------------------------------------------ */

static uint16_t crc16(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) != 0 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

int rt_cluster_hash_slot(const void *key, size_t len)
{
    const unsigned char *k = key;
    const unsigned char *open = memchr(k, '{', len);
    if (open != NULL) {
        size_t from = (size_t)(open - k) + 1;
        const unsigned char *close = memchr(k + from, '}', len - from);
        if (close != NULL && close > k + from)
            return crc16(k + from, (size_t)(close - (k + from))) & (RT_CLUSTER_SLOTS - 1);
    }
    return crc16(k, len) & (RT_CLUSTER_SLOTS - 1);
}

int rt_cluster_keyslot(rt_cluster *c, const char *key)
{
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        if (!rt_cluster_alive(c, i))
            continue;
        redisReply *r = rt_cluster_cmd(c, i, "CLUSTER KEYSLOT %s", key);
        int slot = r != NULL && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
        if (r != NULL)
            freeReplyObject(r);
        if (slot >= 0)
            return slot;
    }
    return -1;
}

int rt_cluster_slot_map(rt_cluster *c, int node, short owner[RT_CLUSTER_SLOTS])
{
    if (!rt_cluster_alive(c, node)) {
        for (int s = 0; s < RT_CLUSTER_SLOTS; s++)
            owner[s] = -1;
        return -1;
    }
    return look_slots(c, node, owner);
}

/* The slot map of the first running master that answers (masters by
 * role[]; then any running node).  0 or -1. */
static int some_map(rt_cluster *c, short *owner)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < RT_CLUSTER_NODES; i++)
            if (rt_cluster_alive(c, i) && (pass == 1) == (c->role[i] != RT_CLUSTER_MASTER) &&
                look_slots(c, i, owner) == 0)
                return 0;
    return -1;
}

int rt_cluster_slot_owner(rt_cluster *c, int slot)
{
    if (c == NULL || slot < 0 || slot >= RT_CLUSTER_SLOTS)
        return -1;
    short *owner = malloc(RT_CLUSTER_SLOTS * sizeof *owner);
    if (owner == NULL)
        return -1;
    int who = some_map(c, owner) == 0 ? owner[slot] : -1;
    free(owner);
    return who;
}

int rt_cluster_key_on(rt_cluster *c, int node, const char *prefix, char *out, size_t len)
{
    if (!valid(c, node) || out == NULL || len == 0)
        return -1;
    out[0] = '\0';
    short *owner = malloc(RT_CLUSTER_SLOTS * sizeof *owner);
    if (owner == NULL)
        return -1;
    int slot = -1, serves = 0;
    if (some_map(c, owner) == 0)
        for (int s = 0; s < RT_CLUSTER_SLOTS && !serves; s++)
            serves = owner[s] == node;
    if (serves) {
        /* One slot in 16384 is found within 10^6 tries but for e^-61. */
        for (int n = 0; n < 1000000 && slot < 0; n++) {
            int w = snprintf(out, len, "%s%d", prefix != NULL ? prefix : "", n);
            if (w < 0 || (size_t)w >= len)
                break;
            int s = rt_cluster_hash_slot(out, (size_t)w);
            if (owner[s] == node)
                slot = s;
        }
    }
    if (slot < 0)
        out[0] = '\0';
    free(owner);
    return slot;
}

/* ---- migration -------------------------------------------------------------------------- */

static int check_pair(rt_cluster *c, int slot, int from, int to, const char *what)
{
    if (!rt_cluster_alive(c, from) || !rt_cluster_alive(c, to) || from == to || slot < 0 ||
        slot >= RT_CLUSTER_SLOTS) {
        fprintf(stderr, "rt_cluster: %s: bad arguments (slot %d, from %d, to %d)\n", what, slot,
                from, to);
        return -1;
    }
    return 0;
}

int rt_cluster_migrate_start(rt_cluster *c, int slot, int from, int to)
{
    if (check_pair(c, slot, from, to, "migrate_start") != 0)
        return -1;
    if (!ok_reply(rt_cluster_cmd(c, to, "CLUSTER SETSLOT %d IMPORTING %s", slot, c->id[from]),
                  to, "CLUSTER SETSLOT IMPORTING") ||
        !ok_reply(rt_cluster_cmd(c, from, "CLUSTER SETSLOT %d MIGRATING %s", slot, c->id[to]),
                  from, "CLUSTER SETSLOT MIGRATING"))
        return -1;
    return 0;
}

int rt_cluster_migrate_keys(rt_cluster *c, int slot, int from, int to)
{
    if (check_pair(c, slot, from, to, "migrate_keys") != 0)
        return -1;
    const rt_server *t = &c->srv[to];
    char port[16];
    snprintf(port, sizeof port, "%d", t->port);
    int moved = 0;
    int64_t end = rt_now_ms() + KEYS_TIMEOUT_MS;
    for (;;) {
        redisReply *keys =
            rt_cluster_cmd(c, from, "CLUSTER GETKEYSINSLOT %d %d", slot, MIGRATE_BATCH);
        if (keys == NULL || keys->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "rt_cluster: CLUSTER GETKEYSINSLOT on node %d: %s\n", from,
                    keys != NULL && keys->type == REDIS_REPLY_ERROR ? keys->str : "failed");
            if (keys != NULL)
                freeReplyObject(keys);
            return -1;
        }
        size_t nkeys = keys->elements;
        if (nkeys == 0) {
            freeReplyObject(keys);
            return moved;
        }
        size_t max = 10 + nkeys;
        const char **argv = malloc(max * sizeof *argv);
        size_t *lens = malloc(max * sizeof *lens);
        redisReply *r = NULL;
        if (argv != NULL && lens != NULL) {
            int n = 0;
            argv[n++] = "MIGRATE";
            argv[n++] = "127.0.0.1";
            argv[n++] = port;
            argv[n++] = "";
            argv[n++] = "0";
            argv[n++] = "5000";
            if (t->password[0] != '\0' && t->user[0] != '\0') {
                argv[n++] = "AUTH2";
                argv[n++] = t->user;
                argv[n++] = t->password;
            } else if (t->password[0] != '\0') {
                argv[n++] = "AUTH";
                argv[n++] = t->password;
            }
            argv[n++] = "KEYS";
            for (int k = 0; k < n; k++)
                lens[k] = strlen(argv[k]);
            for (size_t k = 0; k < nkeys; k++) {
                argv[n] = keys->element[k]->str;
                lens[n] = keys->element[k]->len;
                n++;
            }
            r = rt_cluster_cmd_argv(c, from, n, argv, lens);
        }
        free(argv);
        free(lens);
        freeReplyObject(keys);
        int ok = r != NULL && r->type == REDIS_REPLY_STATUS &&
                 (strcmp(r->str, "OK") == 0 || strcmp(r->str, "NOKEY") == 0);
        if (ok && strcmp(r->str, "OK") == 0)
            moved += (int)nkeys;
        if (!ok)
            fprintf(stderr, "rt_cluster: MIGRATE from node %d to node %d: %s\n", from, to,
                    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "failed");
        if (r != NULL)
            freeReplyObject(r);
        if (!ok)
            return -1;
        if (rt_now_ms() >= end) {
            fprintf(stderr, "rt_cluster: migrate_keys: slot %d not emptied within %d ms\n", slot,
                    KEYS_TIMEOUT_MS);
            return -1;
        }
    }
}

struct owner_arg {
    int slot, node;
};

static int pred_owner(rt_cluster *c, const node_view *v, int ref, void *arg, char *why,
                      size_t wlen)
{
    (void)c;
    const struct owner_arg *a = arg;
    if (v[ref].owner[a->slot] == a->node)
        return 0;
    snprintf(why, wlen, "slot %d is served by %d, not %d", a->slot, v[ref].owner[a->slot],
             a->node);
    return -1;
}

int rt_cluster_migrate_finish(rt_cluster *c, int slot, int to)
{
    if (!rt_cluster_alive(c, to) || slot < 0 || slot >= RT_CLUSTER_SLOTS) {
        fprintf(stderr, "rt_cluster: migrate_finish: bad arguments (slot %d, to %d)\n", slot,
                to);
        return -1;
    }
    if (!ok_reply(rt_cluster_cmd(c, to, "CLUSTER SETSLOT %d NODE %s", slot, c->id[to]), to,
                  "CLUSTER SETSLOT NODE"))
        return -1;
    rt_cluster_refresh(c);
    int rc = 0;
    for (int i = 0; i < RT_CLUSTER_NODES; i++)
        if (i != to && rt_cluster_alive(c, i) && c->role[i] == RT_CLUSTER_MASTER &&
            !ok_reply(rt_cluster_cmd(c, i, "CLUSTER SETSLOT %d NODE %s", slot, c->id[to]), i,
                      "CLUSTER SETSLOT NODE"))
            rc = -1;
    if (rc != 0)
        return -1;
    struct owner_arg a = {slot, to};
    return wait_for(c, FINISH_TIMEOUT_MS, W_AGREE, pred_owner, &a, "migrate_finish");
}

int rt_cluster_migrate(rt_cluster *c, int slot, int from, int to)
{
    if (rt_cluster_migrate_start(c, slot, from, to) != 0 ||
        rt_cluster_migrate_keys(c, slot, from, to) < 0 ||
        rt_cluster_migrate_finish(c, slot, to) != 0)
        return -1;
    return 0;
}

/* ---- failover ------------------------------------------------------------------------------ */

/* Node `*arg` says it is a master and serves slots. */
static int pred_master(rt_cluster *c, const node_view *v, int ref, void *arg, char *why,
                       size_t wlen)
{
    (void)c;
    int k = *(const int *)arg;
    if (!v[k].up || !v[k].master) {
        snprintf(why, wlen, "node %d is not a master yet", k);
        return -1;
    }
    for (int s = 0; s < RT_CLUSTER_SLOTS; s++)
        if (v[ref].owner[s] == k)
            return k;
    snprintf(why, wlen, "node %d serves no slot", k);
    return -1;
}

int rt_cluster_failover(rt_cluster *c, int replica, const char *mode, int timeout_ms)
{
    if (!rt_cluster_alive(c, replica)) {
        fprintf(stderr, "rt_cluster: failover: node %d is not running\n", replica);
        return -1;
    }
    int64_t end = rt_now_ms() + timeout_ms;
    redisReply *r = mode != NULL && mode[0] != '\0'
                        ? rt_cluster_cmd(c, replica, "CLUSTER FAILOVER %s", mode)
                        : rt_cluster_cmd(c, replica, "CLUSTER FAILOVER");
    if (!ok_reply(r, replica, "CLUSTER FAILOVER"))
        return -1;
    int left = (int)(end - rt_now_ms());
    return wait_for(c, left, W_ALL, pred_master, &replica, "failover") == replica ? 0 : -1;
}

struct promoted_arg {
    int old;
    int candidate[RT_CLUSTER_NODES];
};

static int pred_promoted(rt_cluster *c, const node_view *v, int ref, void *arg, char *why,
                         size_t wlen)
{
    (void)c;
    const struct promoted_arg *a = arg;
    for (int s = 0; s < RT_CLUSTER_SLOTS; s++)
        if (v[ref].owner[s] == a->old) {
            snprintf(why, wlen, "slot %d still served by node %d", s, a->old);
            return -1;
        }
    snprintf(why, wlen, "no replica of node %d is a master", a->old);
    for (int k = 0; k < RT_CLUSTER_NODES; k++) {
        if (!a->candidate[k] || !v[k].up || !v[k].master)
            continue;
        for (int s = 0; s < RT_CLUSTER_SLOTS; s++)
            if (v[ref].owner[s] == k)
                return k;
    }
    return -1;
}

int rt_cluster_wait_promoted(rt_cluster *c, int old_master, int timeout_ms)
{
    if (!valid(c, old_master))
        return -1;
    struct promoted_arg a;
    memset(&a, 0, sizeof a);
    a.old = old_master;
    int any = 0;
    for (int k = 0; k < RT_CLUSTER_NODES; k++)
        if (k != old_master && c->master_of[k] == old_master)
            any = a.candidate[k] = 1;
    if (!any) {
        fprintf(stderr, "rt_cluster: wait_promoted: node %d has no replica\n", old_master);
        return -1;
    }
    return wait_for(c, timeout_ms, W_ALL, pred_promoted, &a, "wait_promoted");
}
