/*
 * The torture test's network helpers (proxy.c): a delay proxy in front of a
 * node, and PSUBSCRIBE * listeners on the nodes.  Both run a thread of
 * their own in the driver process.
 */
#ifndef REDLOCK_TORTURE_PROXY_H
#define REDLOCK_TORTURE_PROXY_H

typedef struct t_proxy t_proxy;

/* A proxy on a free loopback port forwarding to 127.0.0.1:target_port.
 * NULL on failure. */
t_proxy *t_proxy_start(int target_port);
/* The same in two steps: the listening socket now (connections wait in its
 * backlog), the thread later (e.g. after a fork). */
t_proxy *t_proxy_new(int target_port);
int t_proxy_run(t_proxy *p);
int t_proxy_port(const t_proxy *p);
/* Delay every chunk read (either way) during the next window_ms by
 * delay_ms. */
void t_proxy_delay_all(t_proxy *p, int delay_ms, int window_ms);
/* The next connection to send a request gets all its traffic (either way)
 * delayed by delay_ms during window_ms, starting with that request. */
void t_proxy_delay_next(t_proxy *p, int delay_ms, int window_ms);
/* How many connections were chosen by t_proxy_delay_next(). */
long t_proxy_windows(const t_proxy *p);
void t_proxy_stop(t_proxy *p);

#define T_PSUB_MAX 16
typedef struct t_psub t_psub;
/* One connection per port doing PSUBSCRIBE * (and reading what comes),
 * reconnected 100 ms after it is dropped. */
t_psub *t_psub_start(const int *ports, int n);
long t_psub_subscriptions(const t_psub *s);
void t_psub_stop(t_psub *s);

#endif
