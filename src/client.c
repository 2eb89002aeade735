/* The client: options, connecting to the nodes, and tearing down. */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

void redlock_options_init(redlock_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 2000;
    o->io_timeout_ms = 2000;
    o->node_timeout_ms = 0;
    o->retry_delay_ms = 100;
    o->drift_factor = 0.01;
    o->renew_floor_ms = 5000;
    o->max_hold_ms = 0;
    o->fencing = 0;
    o->min_replicas = 0;
    o->holder_info = 0;
}

/* ";host=<name>;pid=<pid>": the host name cut short and kept to
 * characters a parser of the token can trust. */
static void holder_suffix(char *out, size_t len)
{
    char host[65] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
            *p = '_';
    snprintf(out, len, ";host=%s;pid=%ld", host, (long)getpid());
}

redlock_status redlock__own_token(const redlock_client *c, char *out)
{
    redlock_status st = redlock__new_token(out);
    if (st != REDLOCK_OK || !c->holder[0])
        return st;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out + REDLOCK__TOKEN_LEN,
             REDLOCK__OWN_TOKEN_MAX - REDLOCK__TOKEN_LEN, "%s;since=%lld",
             c->holder,
             (long long)ts.tv_sec * 1000 + (long long)(ts.tv_nsec / 1000000));
    return REDLOCK_OK;
}

static redlock_status check_options(const redlock_options *o, size_t n)
{
    if (o->connect_timeout_ms <= 0)
        return redlock__fail(REDLOCK_INVALID,
                             "connect_timeout_ms must be > 0 (got %d)",
                             o->connect_timeout_ms);
    if (o->io_timeout_ms <= 0)
        return redlock__fail(REDLOCK_INVALID,
                             "io_timeout_ms must be > 0 (got %d)",
                             o->io_timeout_ms);
    if (o->node_timeout_ms < 0)
        return redlock__fail(REDLOCK_INVALID,
                             "node_timeout_ms must be >= 0 (got %d)",
                             o->node_timeout_ms);
    if (o->retry_delay_ms <= 0)
        return redlock__fail(REDLOCK_INVALID,
                             "retry_delay_ms must be > 0 (got %d)",
                             o->retry_delay_ms);
    if (!(o->drift_factor >= 0.0 && o->drift_factor < 0.5))
        return redlock__fail(REDLOCK_INVALID,
                             "drift_factor must lie in [0, 0.5) (got %g)",
                             o->drift_factor);
    if (o->renew_floor_ms < 0)
        return redlock__fail(REDLOCK_INVALID,
                             "renew_floor_ms must be >= 0 (got %d)",
                             o->renew_floor_ms);
    if (o->max_hold_ms < 0)
        return redlock__fail(REDLOCK_INVALID,
                             "max_hold_ms must be >= 0 (got %d)",
                             o->max_hold_ms);
    if (o->min_replicas < 0)
        return redlock__fail(REDLOCK_INVALID,
                             "min_replicas must be >= 0 (got %d)",
                             o->min_replicas);
    if (o->fencing && n > 1)
        return redlock__fail(REDLOCK_INVALID,
                             "fencing needs a single node: with %zu nodes "
                             "each keeps its own counter, which is no "
                             "fencing token",
                             n);
    return REDLOCK_OK;
}

/* Open the first connection of every node and load the scripts there, so
 * that the first lock operation pays no EVAL and a wrong password shows at
 * connect.  Returns how many nodes are up; *worst and msg describe the
 * first failure, a refusal of credentials preferred as the one to fix. */
static int prime_nodes(redlock_client *c, redlock_status *worst, char *msg,
                       size_t msglen)
{
    enum { NS = 8 }; /* >= redlock__nscripts */
    redlock__call calls[REDLOCK_MAX_NODES][NS];
    redlock__batch b[REDLOCK_MAX_NODES];
    memset(calls, 0, sizeof calls);
    memset(b, 0, sizeof b);
    for (int i = 0; i < c->nnodes; i++) {
        for (size_t k = 0; k < redlock__nscripts && k < NS; k++) {
            redlock__call *cl = &calls[i][k];
            cl->argc = 3;
            cl->argv[0] = "SCRIPT";
            cl->argv[1] = "LOAD";
            cl->argv[2] = redlock__scripts[k]->body;
            for (int a = 0; a < 3; a++)
                cl->argvlen[a] = strlen(cl->argv[a]);
        }
        b[i].node = &c->nodes[i];
        b[i].calls = calls[i];
        /* A cluster is up once its map is read: its masters load the
         * scripts when first used (NOSCRIPT), and one of them down must not
         * fail the connect (its slots' calls fail; the others work). */
        b[i].ncalls = c->nodes[i].cluster ? 0 : (int)redlock__nscripts;
    }
    int64_t dl = redlock__now_ns() + ((int64_t)c->opts.connect_timeout_ms +
                                      c->opts.io_timeout_ms) * 1000000;
    redlock_status cst[REDLOCK_MAX_NODES];
    char cerr[REDLOCK_MAX_NODES][sizeof b[0].err];
    for (int i = 0; i < c->nnodes; i++)
        if (c->nodes[i].cluster) {
            cst[i] = redlock__cluster_refresh(&c->nodes[i], dl);
            snprintf(cerr[i], sizeof cerr[i], "%s", redlock_last_error());
        }
    redlock__exchange(b, c->nnodes, dl);

    int up = 0;
    *worst = REDLOCK_OK;
    for (int i = 0; i < c->nnodes; i++) {
        redlock_status st = c->nodes[i].cluster ? cst[i] : b[i].st;
        char err[sizeof b[i].err + 64];
        snprintf(err, sizeof err, "%s",
                 c->nodes[i].cluster ? cerr[i] : b[i].err);
        for (int k = 0; st == REDLOCK_OK && k < b[i].ncalls; k++) {
            redisReply *r = calls[i][k].reply;
            if (r->type == REDIS_REPLY_ERROR) {
                st = redlock__reply_error_status(r);
                snprintf(err, sizeof err, "%.120s: SCRIPT LOAD refused: %.100s",
                         b[i].node->name, r->str);
            }
        }
        if (st == REDLOCK_OK) {
            up++;
        } else if (*worst == REDLOCK_OK || *worst == REDLOCK_IO) {
            *worst = st;
            snprintf(msg, msglen, "%s", err);
        }
    }
    redlock__batches_clear(b, c->nnodes);
    return up;
}

/* Copy the tls_* strings (the caller's may go), and build the TLS
 * context when a node uses TLS. */
static redlock_status setup_tls(redlock_client *c)
{
    const char **s[] = {&c->opts.tls_cacert, &c->opts.tls_cacertdir,
                        &c->opts.tls_cert, &c->opts.tls_key,
                        &c->opts.tls_sni};
    for (int i = 0; i < 5; i++) {
        if (!*s[i])
            continue;
        if (!(c->tls_copies[i] = strdup(*s[i]))) {
            for (int k = i; k < 5; k++)
                *s[k] = NULL; /* never left pointing at the caller's */
            return redlock__fail(REDLOCK_NOMEM, "out of memory");
        }
        *s[i] = c->tls_copies[i];
    }
    int need = 0;
    for (int i = 0; i < c->nnodes; i++)
        need |= !c->nodes[i].url.is_unix &&
                (c->nodes[i].url.tls || c->opts.tls);
    redlock_status st = redlock__tls_ctx_new(&c->opts, need, &c->tls_ctx);
    if (st != REDLOCK_OK)
        return st;
    for (int i = 0; i < c->nnodes; i++)
        if (!c->nodes[i].url.is_unix && (c->nodes[i].url.tls || c->opts.tls))
            redlock__sentinel_use_tls(&c->nodes[i], c->tls_ctx);
    return REDLOCK_OK;
}

static int same_host(const char *h1, int p1, const char *h2, int p2)
{
    return p1 == p2 && h1 && h2 && strcasecmp(h1, h2) == 0;
}

/* Two URLs that reach the same Redis server (or the same cluster, or the
 * same Sentinel group), whatever their db or credentials: as far as the
 * URLs tell (a name and an address of one host are not compared). */
static int same_server(const redlock__url *a, const redlock__url *b)
{
    if (a->is_unix || b->is_unix)
        return a->is_unix && b->is_unix && strcmp(a->path, b->path) == 0;
    if (a->sentinel != b->sentinel)
        return 0; /* a sentinel is no data node */
    if (a->cluster != b->cluster) { /* a plain URL to one of its seeds */
        const redlock__url *k = a->cluster ? a : b, *p = a->cluster ? b : a;
        for (int i = 0; i < k->nhosts; i++)
            if (same_host(k->hosts[i], k->ports[i], p->host, p->port))
                return 1;
        return 0;
    }
    if (!a->cluster && !a->sentinel)
        return same_host(a->host, a->port, b->host, b->port);
    if (a->sentinel && strcmp(a->master, b->master) != 0)
        return 0;
    for (int i = 0; i < a->nhosts; i++)
        for (int j = 0; j < b->nhosts; j++)
            if (same_host(a->hosts[i], a->ports[i], b->hosts[j], b->ports[j]))
                return 1;
    return 0;
}

redlock_client *redlock_connect(const char *const *urls, size_t n,
                                const redlock_options *opts,
                                redlock_status *status)
{
    redlock_status dummy;
    if (!status)
        status = &dummy;
    redlock__clear_error();
    if (!urls || n < 1 || n > REDLOCK_MAX_NODES) {
        *status = redlock__fail(REDLOCK_INVALID,
                                "need 1..%d node URLs (got %zu%s)",
                                REDLOCK_MAX_NODES, n, urls ? "" : ", NULL");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!urls[i]) {
            *status = redlock__fail(REDLOCK_INVALID, "URL %zu is NULL", i);
            return NULL;
        }

    redlock_client *c = calloc(1, sizeof *c);
    if (!c) {
        *status = redlock__fail(REDLOCK_NOMEM, "out of memory");
        return NULL;
    }
    if (opts)
        c->opts = *opts;
    else
        redlock_options_init(&c->opts);
    if ((*status = check_options(&c->opts, n)) != REDLOCK_OK) {
        free(c);
        return NULL;
    }
    if (c->opts.node_timeout_ms == 0)
        c->opts.node_timeout_ms = c->opts.io_timeout_ms;
    c->nodes = calloc(n, sizeof *c->nodes);
    if (!c->nodes) {
        free(c);
        *status = redlock__fail(REDLOCK_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    redlock__cond_init_monotonic(&c->ids_cv);
    pthread_mutex_init(&c->wd_mu, NULL);
    pthread_mutex_init(&c->notify_mu, NULL);
    for (size_t i = 0; i < n; i++) {
        if ((*status = redlock__node_init(&c->nodes[i], urls[i], &c->opts)) !=
            REDLOCK_OK) {
            redlock_client_free(c);
            return NULL;
        }
        c->nodes[i].client = c;
        c->nnodes++;
        for (size_t j = 0; j < i; j++)
            if (same_server(&c->nodes[j].url, &c->nodes[i].url)) {
                *status = redlock__fail(
                    REDLOCK_INVALID,
                    "URLs %zu and %zu name the same server (%s): a quorum "
                    "needs independent nodes, and one listed twice would "
                    "count twice",
                    j, i, c->nodes[i].name);
                redlock_client_free(c);
                return NULL;
            }
    }
    /* The sentinels' nodes have them now, percent-encoded into their
     * URLs; the caller's strings may go. */
    c->opts.sentinel_user = c->opts.sentinel_password = NULL;
    if ((*status = setup_tls(c)) != REDLOCK_OK) {
        redlock_client_free(c);
        return NULL;
    }
    for (int i = 0; i < c->nnodes; i++)
        if (c->nodes[i].cluster) {
            redlock__cluster_attach(&c->nodes[i]);
            c->cluster_names = 1;
        }
    c->quorum = c->nnodes / 2 + 1;

    /* The queue hands a lock over on one node in one atomic step; per-node
     * queues of N > 1 would grant different waiters, and a grant written
     * by the releaser is no write of the waiter's that WAIT could count. */
    c->queued = c->nnodes == 1 && c->opts.min_replicas == 0;
    char tok[REDLOCK__TOKEN_LEN + 1];
    if ((*status = redlock__new_token(tok)) != REDLOCK_OK) {
        redlock_client_free(c);
        return NULL;
    }
    for (size_t i = 0, k = 0; tok[i]; i++)
        if (tok[i] != '-')
            c->grant_id[k++] = tok[i];
    if (c->opts.holder_info)
        holder_suffix(c->holder, sizeof c->holder);

    redlock_status worst;
    char msg[512] = "";
    int up = prime_nodes(c, &worst, msg, sizeof msg);
    if (up < c->quorum) {
        if (c->nnodes == 1)
            *status = redlock__fail(worst, "%s", msg);
        else
            *status = redlock__fail(worst,
                                    "only %d of %d nodes reachable, %d needed"
                                    " (%s)",
                                    up, c->nnodes, c->quorum, msg);
        redlock_client_free(c);
        return NULL;
    }
    if ((*status = redlock__sentinel_watch_start(c)) != REDLOCK_OK) {
        redlock_client_free(c);
        return NULL;
    }
    *status = REDLOCK_OK;
    redlock__clear_error();
    return c;
}

/* Last contact: delete the ghost tokens still owed (a PING carries them,
 * see node.c), so that a client freed right after a timed-out acquire
 * leaves no lock behind for a whole ttl.  Best effort, by deadline_ns, and
 * not on the nodes the teardown gave up on. */
/* A cluster's ghosts go out on the connections of the masters owning their
 * slots: one PING per master (a few; more are left to expire). */
#define BURY_MASTERS 64

static void bury_ghosts(redlock_client *c, int64_t deadline_ns, uint32_t dead)
{
    redlock__call calls[REDLOCK_MAX_NODES];
    redlock__call *many[REDLOCK_MAX_NODES] = {0};
    redlock__batch b[REDLOCK_MAX_NODES];
    int any = 0;
    memset(calls, 0, sizeof calls[0] * (size_t)c->nnodes);
    memset(b, 0, sizeof b[0] * (size_t)c->nnodes);
    for (int i = 0; i < c->nnodes; i++) {
        redlock__node *n = &c->nodes[i];
        b[i].node = n;
        b[i].calls = &calls[i];
        pthread_mutex_lock(&n->mu);
        b[i].ncalls = n->nghosts > 0 && !(dead & (UINT32_C(1) << i));
        pthread_mutex_unlock(&n->mu);
        calls[i].argc = 1;
        calls[i].argv[0] = "PING";
        calls[i].argvlen[0] = 4;
        if (b[i].ncalls && n->cluster) {
            redlock__node *m[BURY_MASTERS];
            redlock_status st;
            int nm = redlock__cluster_masters(n, m, BURY_MASTERS, deadline_ns,
                                              &st);
            if (nm > 0 && (many[i] = calloc((size_t)nm, sizeof *many[i]))) {
                for (int k = 0; k < nm; k++) {
                    many[i][k] = calls[i];
                    many[i][k].shard = m[k];
                }
                b[i].calls = many[i];
                b[i].ncalls = nm;
            }
        }
        any |= b[i].ncalls;
    }
    int64_t now = redlock__now_ns();
    if (any && now < deadline_ns) {
        int64_t dl = now + (int64_t)c->opts.node_timeout_ms * 1000000;
        redlock__exchange(b, c->nnodes, dl < deadline_ns ? dl : deadline_ns);
        redlock__batches_clear(b, c->nnodes);
    }
    for (int i = 0; i < c->nnodes; i++)
        free(many[i]);
}

void redlock_client_free(redlock_client *c)
{
    if (!c)
        return;
    /* One bound for the whole teardown, however many locks are left: a
     * node that fails once in it is not waited for again. */
    int64_t deadline = redlock__now_ns() +
                       ((int64_t)c->opts.connect_timeout_ms +
                        c->opts.io_timeout_ms) * 1000000;
    uint32_t dead = 0;
    redlock__sentinel_watch_stop(c, 0);
    redlock__notify_stop(c);
    redlock__watchdog_stop(c);
    redlock__release_all(c, deadline, &dead);
    bury_ghosts(c, deadline, dead);
    redlock__sentinel_watch_stop(c, 1);
    for (int i = 0; i < c->nnodes; i++)
        redlock__node_destroy(&c->nodes[i]);
    free(c->nodes);
    free(c->ids);
    redlock__tls_ctx_free(c->tls_ctx);
    for (int i = 0; i < 5; i++)
        free(c->tls_copies[i]);
    pthread_cond_destroy(&c->ids_cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->wd_mu);
    pthread_mutex_destroy(&c->notify_mu);
    free(c);
}
