/*
 * Test helper: a Sentinel-managed group of real processes on loopback.
 *
 *     rt_sentinel_group g;
 *     assert_int_equal(rt_sentinel_group_start(&g, "mymaster"), 0);
 *     ... redlock_connect((const char *[]){g.url}, 1, NULL, &st) ...
 *     int m = rt_sentinel_failover(&g, 20000);   // index of the new master
 *     rt_sentinel_group_stop(&g);
 *
 * A master (srv[0] at start) and two replicas (rt_server, --replicaof),
 * then three redis-sentinel processes, each in its own temporary
 * directory, monitoring the master with quorum 2, down-after 1000 ms and
 * a short failover timeout.  srv[2] has replica-priority 0, so that a
 * failover always promotes srv[1]: tests can choose what it misses.
 * Start returns once every sentinel knows both replicas and the two
 * other sentinels.  Sentinels die with the starting thread
 * (PR_SET_PDEATHSIG) and at exit().
 *
 * TLS mode ($REDLOCK_TEST_TLS=<certdir>, as for rt_server_start): the
 * servers are TLS-only (the harness's TLS mode, replication over TLS too),
 * and each sentinel listens for TLS on tls_port, talks TLS to the servers
 * and to the other sentinels (tls-replication), and asks no client
 * certificate; g.url is then rediss+sentinel:// with the TLS ports.  A
 * sentinel keeps a plaintext port on 127.0.0.1 for the rt_sentinel_*
 * helpers only (hiredis 0.14 has no TLS), which the library is never
 * given.
 */
#ifndef REDLOCK_TEST_SENTINEL_GROUP_H
#define REDLOCK_TEST_SENTINEL_GROUP_H

#include "redis_server.h"

#define RT_SENTINELS 3

typedef struct rt_sentinel {
    pid_t pid; /* 0 when stopped */
    int port;     /* plaintext: the helpers' commands */
    int tls_port; /* TLS mode: the port in g.url; else 0 */
    char dir[64];
} rt_sentinel;

typedef struct rt_sentinel_group {
    char name[64];
    rt_server srv[3];
    rt_sentinel sen[RT_SENTINELS];
    int tls;       /* TLS mode (see above) */
    char certdir[256];
    /* redis+sentinel://127.0.0.1:p1,...,127.0.0.1:p3/name, or
     * rediss+sentinel:// with the TLS ports */
    char url[512];
} rt_sentinel_group;

/* "rediss+sentinel" in TLS mode, else "redis+sentinel": for a test's own
 * Sentinel URLs (e.g. to ports where nothing listens). */
const char *rt_sentinel_scheme(void);

/* 0, or -1 with a message on stderr (everything started is stopped). */
int rt_sentinel_group_start(rt_sentinel_group *g, const char *name);
void rt_sentinel_group_stop(rt_sentinel_group *g);
/* SIGKILL sentinel i (or all of them with -1). */
void rt_sentinel_kill(rt_sentinel_group *g, int i);
/* A command to sentinel i, on a fresh connection; NULL on failure. */
redisReply *rt_sentinel_cmd(rt_sentinel_group *g, int i, const char *fmt, ...);
/* The port sentinel i names as the master, or -1. */
int rt_sentinel_master_port(rt_sentinel_group *g, int i);
/* Index in srv[] of the server on that port, or -1. */
int rt_sentinel_index(const rt_sentinel_group *g, int port);
/* Wait (at most timeout_ms) until every live sentinel names a master
 * other than srv[old] and that server says ROLE master; its index, or -1. */
int rt_sentinel_wait_switch(rt_sentinel_group *g, int old, int timeout_ms);
/* SENTINEL FAILOVER, then rt_sentinel_wait_switch; the new index or -1. */
int rt_sentinel_failover(rt_sentinel_group *g, int timeout_ms);

#endif
