/*
 * redlock-bench: helpers shared by the benchmark's files.
 *
 *   util.c     clocks, samples and percentiles, RSS and CPU time, CPU
 *              affinity, URL parsing and raw hiredis connections
 *   servers.c  throwaway redis-server processes (free loopback ports,
 *              killed by pid at exit and on SIGINT/SIGTERM/SIGHUP)
 *   proxy.c    a TCP proxy that holds every chunk back for a fixed delay
 *   waiters.c  one run of the waiter-scaling scenario: W waiter processes
 *              on one key (libredlock or a raw hiredis poller)
 *
 * Everything here is for the benchmark only: it prints to stderr on
 * failure, and uses no library internals (only include/redlock.h and
 * hiredis).
 */
#ifndef REDLOCK_BENCH_H
#define REDLOCK_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

/* ---- time ------------------------------------------------------------------ */

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bn_now_ns(void);
/* Sleep until the monotonic time t (ns), EINTR-proof. */
void bn_sleep_until_ns(int64_t t);
void bn_sleep_ns(int64_t ns);

/* ---- samples --------------------------------------------------------------- */

/* A growing array of int64 samples (nanoseconds, usually). */
typedef struct bn_samples {
    int64_t *v;
    size_t n, cap;
    int sorted;
} bn_samples;

/* 0, or -1 when out of memory (the sample is dropped). */
int bn_samples_push(bn_samples *s, int64_t x);
int bn_samples_append(bn_samples *dst, const bn_samples *src);
void bn_samples_free(bn_samples *s);
/* Nearest-rank percentile (p in 0..100) of the samples, sorting them; 0
 * when there are none. */
int64_t bn_percentile(bn_samples *s, double p);
int64_t bn_max(const bn_samples *s);

/* ---- process figures ---------------------------------------------------------- */

/* VmRSS of this process in KiB, or -1. */
long bn_rss_kb(void);
/* Bytes malloc has handed out and not had back (glibc mallinfo2, every
 * arena), or -1 where that cannot be known. */
long long bn_heap_in_use(void);
/* Give free heap memory back to the system (glibc malloc_trim), so that a
 * VmRSS difference measured next counts new memory only. */
void bn_heap_trim(void);
/* The first three fields of /proc/loadavg ("0.12 0.30 0.41"), or "?". */
void bn_loadavg(char *buf, size_t len);
/* User + system CPU seconds of the whole process (every thread). */
double bn_cpu_process_s(void);
/* User + system CPU seconds of the calling thread. */
double bn_cpu_thread_s(void);

/* ---- CPU affinity ------------------------------------------------------------ */

/* Remember the affinity the process started with.  Call first in main(). */
void bn_affinity_init(void);
/* Number of CPUs in the starting affinity mask; first and second get the two
 * lowest (or -1). */
int bn_cpus_allowed(int *first, int *second);
/* 1 when cpu is in the starting affinity mask. */
int bn_cpu_allowed(int cpu);
/* Pin the calling thread (and so every thread it creates later) to cpu;
 * cpu < 0 restores the starting mask.  0 or -1. */
int bn_pin_self(int cpu);

/* ---- URLs and raw hiredis connections ------------------------------------------ */

typedef struct bn_url {
    int is_unix;
    char host[256];
    int port;
    char path[256];
    char user[128];
    char password[256];
    int db;
} bn_url;

/* redis://[[user][:password]@]host[:port][/db] and
 * unix://[[user][:password]@]/path[?db=N], without percent-decoding.
 * 0 or -1. */
int bn_url_parse(const char *url, bn_url *u);

/* A blocking hiredis connection with AUTH and SELECT done, connect and
 * I/O timeouts timeout_ms.  NULL (with a message) on failure. */
redisContext *bn_url_connect(const bn_url *u, int timeout_ms);

/* SCRIPT LOAD text; 0 when the server answers with the sha expected. */
int bn_script_load(redisContext *c, const char *text, const char *sha);

/* The integer after "<field>:" in INFO <section> (fields like
 * "cmdstat_evalsha" have "calls=N" looked up in them: pass
 * "cmdstat_evalsha:calls").  A double so that used_cpu_sys works too;
 * -1 when absent or on failure. */
double bn_info_number(redisContext *c, const char *section, const char *field);

/* ---- redis-server processes ------------------------------------------------------ */

typedef struct bn_server {
    pid_t pid;
    int port;
    int slot; /* registry slot + 1; 0: none */
    char dir[64];
    char log[96];
    char url[64];
    /* bn_server_start_tls() only: a second port that speaks TLS */
    int tls_port;
    char tls_url[64];   /* "rediss://127.0.0.1:<tls_port>" */
    char certdir[256];  /* server.crt, server.key, ca.crt (make_certs.sh) */
} bn_server;

/* Install SIGINT/SIGTERM/SIGHUP handlers and an atexit hook that kill
 * every server still running (by pid) and remove its directory. */
void bn_servers_install_cleanup(void);

/* Start redis-server (the binary `path`, or "redis-server" from $PATH when
 * NULL) on a free loopback port (never 6379) with no persistence, in a
 * fresh directory under /tmp; pinned to `cpu` unless cpu < 0.  Waits until
 * it answers PING.  0, or -1 with a message. */
int bn_server_start(bn_server *s, const char *path, int cpu);
/* The same with a TLS port beside the plaintext one (certificates from
 * certdir, as tests/support/make_certs.sh makes them; no client
 * certificates asked for): one server, so that TLS and plaintext are
 * compared on the same process. */
int bn_server_start_tls(bn_server *s, const char *path, int cpu, const char *certdir);
/* SIGKILL, reap, remove its directory.  Idempotent. */
void bn_server_stop(bn_server *s);

/* ---- the delay proxy ------------------------------------------------------------ */

typedef struct bn_proxy bn_proxy;

/* Listen on 127.0.0.1 (a free port, stored in *port) and forward every
 * connection to target_host:target_port, each chunk of bytes held back
 * delay_us microseconds in each direction, in order.  NULL on failure. */
bn_proxy *bn_proxy_start(const char *target_host, int target_port,
                         int64_t delay_us, int *port);
/* Close every connection, join every thread, free.  NULL is a no-op. */
void bn_proxy_stop(bn_proxy *p);

/* ---- the waiter-scaling scenario (waiters.c) ------------------------------------ */

enum { BN_W_LIB, BN_W_POLL };

typedef struct bn_w_config {
    const char *url;     /* the one redis-server */
    const char *key;
    int kind;            /* BN_W_LIB or BN_W_POLL */
    int waiters;         /* processes */
    int64_t poll_ns;     /* BN_W_POLL: the sleep after a refused SET NX */
    int64_t section_ns;  /* the critical section (a sleep) */
    int64_t ttl_ms;      /* of every lock */
    int64_t wait_ms;     /* BN_W_LIB: of every acquire */
    double warmup_s;     /* from the start to the measured window */
    double duration_s;   /* the measured window */
    int kill;            /* waiters to SIGKILL while blocked in acquire */
    double kill_at_s;    /* when, into the measured window */
} bn_w_config;

typedef struct bn_w_result {
    long sections;        /* acquired in the window */
    double window_s;
    double rate;          /* sections/s */
    double server_cpu_us; /* redis-server CPU (INFO cpu) per section */
    double commands;      /* total_commands_processed per section, INFO excluded */
    double own_info;      /* commands one INFO snapshot counts (subtracted) */
    double client_cpu_us; /* CPU of every waiter process, whole run, per section */
    long gaps;            /* idle gaps measured */
    int64_t gap_p50, gap_p99, gap_max; /* ns */
    long min_w, max_w;    /* sections per waiter (killed ones left out) */
    int zero_w;           /* waiters with no section in the window */
    double fairness;      /* min_w / max_w */
    long timeouts;        /* acquires whose wait ran out (BUSY) */
    long overlaps;        /* a section entered while another was in one */
    long early;           /* an acquire returned before the previous holder
                             called release */
    char overlap_detail[256];
    int killed;           /* waiters killed */
    long granted_dying;   /* ... that got the lock while being killed */
    long dropped;         /* sections not recorded (buffer full) */
    int stragglers;       /* waiters killed because they did not finish */
    int errors;           /* waiters that failed */
    char error[256];      /* the first failure */
    char load_before[32], load_after[32];
} bn_w_result;

/* Fork cfg->waiters processes, each with its own client, all looping
 * acquire -> section -> release on cfg->key; measure a window; stop, reap
 * every one of them.  0 when the run completed (res filled; overlaps and
 * errors are in res), -1 when it could not be run. */
int bn_w_run(const bn_w_config *cfg, bn_w_result *res);

#endif
