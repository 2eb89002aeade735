/*
 * Test helper: a TCP proxy on 127.0.0.1 in front of one node, which can
 * hold back what one chosen connection sends: a network that delays one
 * connection and not another, so that a request sent earlier reaches the
 * server after one sent later on another connection.
 *
 *     rt_proxy *p = rt_proxy_start(srv.port);
 *     ... connect the client to rt_proxy_url(p) ...
 *     rt_proxy_delay(p, 0, 400);   // connection 0: 400 ms per chunk from now
 *
 * Connections are numbered from 0 in accept order.  One thread per
 * connection: a delayed chunk holds back that connection's replies too.
 * Not for speed: for ordering.
 */
#ifndef REDLOCK_TEST_DELAY_PROXY_H
#define REDLOCK_TEST_DELAY_PROXY_H

#include "redis_server.h"

typedef struct rt_proxy rt_proxy;

/* Listen on a free loopback port, forwarding to 127.0.0.1:target_port.
 * NULL (with a message on stderr) on failure. */
rt_proxy *rt_proxy_start(int target_port);
/* The same in front of s: the URL is rediss:// when s speaks TLS (the
 * proxy forwards bytes, the TLS session is the client's and the server's;
 * the certificates are for 127.0.0.1). */
rt_proxy *rt_proxy_start_for(const rt_server *s);
/* "redis://127.0.0.1:<port>" (rediss:// from rt_proxy_start_for() of a TLS
 * server) */
const char *rt_proxy_url(const rt_proxy *p);
/* From now on, each chunk connection conn sends towards the server waits
 * delay_ms first (0: none). */
void rt_proxy_delay(rt_proxy *p, int conn, int delay_ms);
/* Connections accepted so far. */
int rt_proxy_connections(rt_proxy *p);
/* Close everything and free p.  NULL is fine. */
void rt_proxy_stop(rt_proxy *p);

#endif
