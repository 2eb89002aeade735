/*
 * Test helper: a real Redis Cluster of six throwaway redis-server
 * processes on loopback (three masters, one replica each).
 *
 *     rt_cluster c;
 *     assert_int_equal(rt_cluster_start(&c), 0);
 *     ... redlock_connect((const char *[]){c.url}, 1, NULL, &st) ...
 *     char key[64];
 *     int slot = rt_cluster_key_on(&c, 1, "lock:", key, sizeof key);
 *     int from = rt_cluster_slot_owner(&c, slot);            // 1
 *     rt_cluster_migrate_start(&c, slot, from, 2);           // ASK from here
 *     rt_cluster_migrate_keys(&c, slot, from, 2);
 *     rt_cluster_migrate_finish(&c, slot, 2);                // MOVED from here
 *     int m = c.master_of[3];                                // 3's master
 *     rt_cluster_failover(&c, 3, NULL, 10000);               // 3 serves m's slots
 *     rt_cluster_kill(&c, 3);                                // ... and dies
 *     int n = rt_cluster_wait_promoted(&c, 3, 15000);        // n == m again
 *     rt_cluster_restart(&c, 3);                             // back, a replica
 *     rt_cluster_wait_ok(&c, 10000);
 *     rt_cluster_stop(&c);
 *
 * Each node is an rt_server (redis_server.h: its own port, directory and
 * unix socket, nothing persisted, killed at exit and with the starting
 * thread) with --cluster-enabled yes, its nodes.conf in its directory, a
 * cluster bus port of its own (--cluster-port, picked free: never
 * port+10000), --cluster-node-timeout 1000 (a dead master is replaced in a
 * few seconds), --cluster-replica-validity-factor 0 (a replica always
 * may take over), --cluster-allow-replica-migration no (replicas stay
 * where they are: roles change only by failover) and
 * --repl-diskless-sync-delay 0 (a replica syncs at once, not after 5 s).
 * The cluster is made by `redis-cli --cluster create ... --cluster-replicas
 * 1 --cluster-yes` (redis-cli is $REDLOCK_TEST_REDIS_CLI, else the one next
 * to redis-server, else the first on $PATH); its output is kept in
 * srv[0].dir/cluster-create.log and shown on failure.
 *
 * Which node is what is read back from the cluster, not assumed:
 * redis-cli makes the first three nodes masters (srv[0..2]; start checks
 * it, and that srv[3..5] are replicas) but pairs the replicas with them as
 * it likes.  role[] and master_of[] say what the nodes said at the last
 * rt_cluster_refresh(), which start, failover, kill, restart and every
 * wait call.
 *
 * TLS mode ($REDLOCK_TEST_TLS=<certdir>, as for rt_server_start): every
 * node listens only for TLS on its port and speaks TLS on the cluster bus
 * and for replication (--tls-cluster yes, --tls-replication yes, the
 * certificate directory's server.crt serving as client certificate too);
 * MIGRATE then uses TLS as well.  redis-cli is run with --tls, --cacert
 * ca.crt, --cert server.crt, --key server.key.
 * url is then rediss+cluster://.  The helpers below reach nodes on their
 * unix sockets (hiredis 0.14 has no TLS), as rt_cmd() does; the library is
 * only ever given the TLS ports.  CLUSTER SLOTS and CLUSTER NODES name the
 * TLS ports then.
 *
 * Every wait is bounded (a node paused with rt_server_pause() makes each
 * look at it take srv[i].cmd_timeout_ms, so a wait may end that much
 * later); a helper that fails says why on stderr.  Not thread-safe on one
 * rt_cluster (the cached connections).
 */
#ifndef REDLOCK_TEST_CLUSTER_H
#define REDLOCK_TEST_CLUSTER_H

#include "redis_server.h"

#define RT_CLUSTER_NODES 6
#define RT_CLUSTER_MASTERS 3
#define RT_CLUSTER_SLOTS 16384

/* role[] values */
#define RT_CLUSTER_DOWN 0    /* killed (or stopped): pid 0 */
#define RT_CLUSTER_MASTER 1
#define RT_CLUSTER_REPLICA 2
#define RT_CLUSTER_UNKNOWN 3 /* running, but did not answer the last refresh */

typedef struct rt_cluster {
    rt_server srv[RT_CLUSTER_NODES];
    int bus_port[RT_CLUSTER_NODES];   /* its --cluster-port */
    char id[RT_CLUSTER_NODES][41];    /* CLUSTER MYID (kept across restarts) */
    int role[RT_CLUSTER_NODES];       /* RT_CLUSTER_* as of the last refresh */
    int master_of[RT_CLUSTER_NODES];  /* a replica's master's index; else -1 */
    int tls;                          /* TLS mode (see above) */
    /* "redis+cluster://127.0.0.1:<p>,127.0.0.1:<p>,127.0.0.1:<p>": the
     * masters at start, in index order, as seeds (rediss+cluster:// in
     * TLS mode).  Not changed by failovers. */
    char url[256];
    /* private */
    redisContext *ctx[RT_CLUSTER_NODES];
} rt_cluster;

/* "rediss+cluster" in TLS mode, else "redis+cluster": for a test's own
 * cluster URLs. */
const char *rt_cluster_scheme(void);

/*
 * Start six nodes, make them a cluster of three masters with one replica
 * each, and wait (at most 30 s) until every node reports cluster_state:ok
 * and knows the five others (none flagged fail), every node's CLUSTER SLOTS
 * maps all 16384 slots to the same masters, and every replica reports
 * master_link_status:up.  Then role[]/master_of[] are filled and checked
 * (three masters, each with exactly one replica) and url is built.
 * Returns 0, or -1 with a message on stderr (everything started is
 * stopped; *c is then as after rt_cluster_stop).
 */
int rt_cluster_start(rt_cluster *c);

/*
 * rt_cluster_start() with extra redis-server arguments for every node
 * (NULL-terminated, as for rt_server_start; at most 12).  A
 * "--requirepass X" among them also gives every node --masterauth X and
 * redis-cli -a X; the helpers authenticate with it (srv[i].password).
 */
int rt_cluster_start_args(rt_cluster *c, const char *const *extra_args);

/* Kill every node and remove its directory, free the cached connections.
 * Idempotent; a zeroed rt_cluster is fine too. */
void rt_cluster_stop(rt_cluster *c);

/*
 * A command (hiredis format) to node i, on a connection cached per node
 * (made on first use, authenticated with srv[i].user/password, timeouts
 * srv[i].cmd_timeout_ms).  Returns the reply (freeReplyObject() it), or
 * NULL when node i could not be reached or did not answer (the connection
 * is then dropped).  A cached connection found broken (the node was
 * restarted) is replaced and the command sent again once: safe because a
 * connection that idled is only broken when the node is gone.  No
 * redirection is followed: this is a plain node connection.
 */
redisReply *rt_cluster_cmd(rt_cluster *c, int i, const char *fmt, ...);
/* The same with an argument vector (binary-safe; argvlen NULL: strlen). */
redisReply *rt_cluster_cmd_argv(rt_cluster *c, int i, int argc, const char **argv,
                                const size_t *argvlen);

/* 1 when node i is running (started, not killed). */
int rt_cluster_alive(const rt_cluster *c, int i);

/* Index of the node with that id / that port (its TCP or TLS port), or -1. */
int rt_cluster_index_of_id(const rt_cluster *c, const char *id, size_t len);
int rt_cluster_index_of_port(const rt_cluster *c, int port);

/* Ask every running node its role (CLUSTER NODES, its "myself" line) and
 * set role[] and master_of[].  0, or -1 when some running node did not
 * answer (its role is then RT_CLUSTER_UNKNOWN). */
int rt_cluster_refresh(rt_cluster *c);

/* The hash slot of a key, computed here: CRC16 (XMODEM) of the key, or of
 * its hash tag (the bytes between the first '{' and the first '}' after it,
 * when there are any), modulo 16384. */
int rt_cluster_hash_slot(const void *key, size_t len);

/* CLUSTER KEYSLOT key, asked of a running node; -1 on failure. */
int rt_cluster_keyslot(rt_cluster *c, const char *key);

/*
 * Node `node`'s view (CLUSTER SLOTS): owner[s] is the index of the master
 * serving slot s, or -1 when none does (or it is not one of ours).
 * 0, or -1 when the node did not answer.
 */
int rt_cluster_slot_map(rt_cluster *c, int node, short owner[RT_CLUSTER_SLOTS]);

/* The index of the master serving slot, by CLUSTER SLOTS from a running
 * master (the first that answers); -1 on error or when no node does. */
int rt_cluster_slot_owner(rt_cluster *c, int slot);

/*
 * Write into out a key "<prefix><n>" (n = 0, 1, ...: the first that fits)
 * whose slot node `node` serves now (by a running master's CLUSTER SLOTS
 * and rt_cluster_hash_slot()).  Returns the slot, or -1 (node serves no
 * slot, out too small, no answer).
 */
int rt_cluster_key_on(rt_cluster *c, int node, const char *prefix, char *out,
                      size_t len);

/*
 * Slot migration in steps, as redis-cli --cluster reshard does it, so that
 * a test can act between them:
 *
 * _start:  CLUSTER SETSLOT slot IMPORTING <from's id> on `to`, then
 *          CLUSTER SETSLOT slot MIGRATING <to's id> on `from`.  From here
 *          `from` answers -ASK for keys of the slot that it does not hold.
 * _keys:   moves every key of the slot from `from` to `to`: CLUSTER
 *          GETKEYSINSLOT slot 100 on `from`, MIGRATE 127.0.0.1 <to's port>
 *          "" 0 5000 [AUTH pw] KEYS ..., until none is left (over TLS in
 *          TLS mode: tls-cluster makes MIGRATE use TLS).  No REPLACE: a key
 *          already on `to` is an error.  Returns the number of keys moved,
 *          or -1.
 * _finish: CLUSTER SETSLOT slot NODE <to's id> on `to`, then on every other
 *          running master (the source among them; it refuses while it
 *          still holds keys of the slot), then waits (at most 10 s) until
 *          every running node's CLUSTER SLOTS says `to` serves the slot.
 *
 * rt_cluster_migrate() does all three.  All return 0 (or the count) or -1
 * with a message on stderr.
 */
int rt_cluster_migrate_start(rt_cluster *c, int slot, int from, int to);
int rt_cluster_migrate_keys(rt_cluster *c, int slot, int from, int to);
int rt_cluster_migrate_finish(rt_cluster *c, int slot, int to);
int rt_cluster_migrate(rt_cluster *c, int slot, int from, int to);

/*
 * Bounded waits (at most timeout_ms each); 0, or -1 with the last reason on
 * stderr.  Only running nodes are asked and counted.
 *
 * _agree: every running node answers CLUSTER SLOTS and all of them map
 *         every slot to the same master (covered or not).
 * _ok:    _agree, and all 16384 slots covered; every running node reports
 *         cluster_state:ok and flags no running node fail or fail?; every
 *         running replica reports master_link_status:up.  role[] and
 *         master_of[] are refreshed.
 */
int rt_cluster_wait_agree(rt_cluster *c, int timeout_ms);
int rt_cluster_wait_ok(rt_cluster *c, int timeout_ms);

/*
 * CLUSTER FAILOVER [mode] on the replica (mode NULL or "": a coordinated
 * manual failover; "FORCE"; "TAKEOVER"), then wait (at most timeout_ms in
 * all) until it reports itself master, serves slots, and the cluster is
 * as rt_cluster_wait_ok() wants it (the old master's link to it up
 * included).  0, or -1.
 */
int rt_cluster_failover(rt_cluster *c, int replica, const char *mode, int timeout_ms);

/* SIGKILL node i (by the pid it was started with; nothing else is ever
 * killed) and keep its port, bus port and directory (nodes.conf), so that
 * rt_cluster_restart() brings it back with the same id.  role[] is
 * refreshed first, so master_of[] still names the replicas of a killed
 * master; role[i] becomes RT_CLUSTER_DOWN. */
void rt_cluster_kill(rt_cluster *c, int i);

/* Start a killed node again, same port, arguments and nodes.conf: it
 * rejoins with its id (its data is gone: nothing is persisted).  A master
 * that was replaced meanwhile comes back as a replica of its successor.
 * Does not wait for the cluster: call rt_cluster_wait_ok().  0 or -1. */
int rt_cluster_restart(rt_cluster *c, int i);

/*
 * After rt_cluster_kill(c, old_master): wait (at most timeout_ms) until
 * one of its replicas (by master_of[] at the kill) reports itself master
 * and serves slots, no running node maps a slot to old_master, and the
 * running nodes are as rt_cluster_wait_ok() wants them.  Returns the new
 * master's index, or -1.
 */
int rt_cluster_wait_promoted(rt_cluster *c, int old_master, int timeout_ms);

#endif
