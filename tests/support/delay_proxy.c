/* The delay proxy of delay_proxy.h. */
#include "delay_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64

struct rt_proxy {
    int listen_fd, target_port;
    char url[64];
    pthread_t acceptor;
    _Atomic int stop;
    _Atomic int nconns;
    _Atomic int delay_ms[MAX_CONNS];
    pthread_t threads[MAX_CONNS];
    int fds[MAX_CONNS][2]; /* client, server */
};

struct conn_arg {
    rt_proxy *p;
    int idx;
};

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *pump(void *arg)
{
    struct conn_arg *a = arg;
    rt_proxy *p = a->p;
    int i = a->idx;
    free(a);
    int cfd = p->fds[i][0], sfd = p->fds[i][1];
    char buf[65536];
    while (!atomic_load(&p->stop)) {
        struct pollfd pf[2] = {{cfd, POLLIN, 0}, {sfd, POLLIN, 0}};
        int rc = poll(pf, 2, 50);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        if (pf[0].revents) {
            ssize_t r = recv(cfd, buf, sizeof buf, 0);
            if (r <= 0)
                break;
            int d = atomic_load(&p->delay_ms[i]);
            if (d > 0)
                sleep_ms(d);
            if (write_all(sfd, buf, (size_t)r) != 0)
                break;
        }
        if (pf[1].revents) {
            ssize_t r = recv(sfd, buf, sizeof buf, 0);
            if (r <= 0)
                break;
            if (write_all(cfd, buf, (size_t)r) != 0)
                break;
        }
    }
    shutdown(cfd, SHUT_RDWR);
    shutdown(sfd, SHUT_RDWR);
    return NULL;
}

static void *accept_loop(void *arg)
{
    rt_proxy *p = arg;
    while (!atomic_load(&p->stop)) {
        struct pollfd pf = {p->listen_fd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int cfd = accept(p->listen_fd, NULL, NULL);
        if (cfd < 0)
            continue;
        int n = atomic_load(&p->nconns);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)p->target_port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct conn_arg *a = malloc(sizeof *a);
        if (n >= MAX_CONNS || sfd < 0 || !a ||
            connect(sfd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(cfd);
            if (sfd >= 0)
                close(sfd);
            free(a);
            continue;
        }
        p->fds[n][0] = cfd;
        p->fds[n][1] = sfd;
        a->p = p;
        a->idx = n;
        if (pthread_create(&p->threads[n], NULL, pump, a) != 0) {
            close(cfd);
            close(sfd);
            free(a);
            continue;
        }
        atomic_store(&p->nconns, n + 1);
    }
    return NULL;
}

static rt_proxy *start(int target_port, int tls)
{
    rt_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->target_port = target_port;
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (p->listen_fd < 0 ||
        bind(p->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(p->listen_fd, 64) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&sa, &len) != 0 ||
        pthread_create(&p->acceptor, NULL, accept_loop, p) != 0) {
        fprintf(stderr, "rt_proxy_start: %s\n", strerror(errno));
        if (p->listen_fd >= 0)
            close(p->listen_fd);
        free(p);
        return NULL;
    }
    snprintf(p->url, sizeof p->url, "%s://127.0.0.1:%d", tls ? "rediss" : "redis",
             ntohs(sa.sin_port));
    return p;
}

rt_proxy *rt_proxy_start(int target_port) { return start(target_port, 0); }

rt_proxy *rt_proxy_start_for(const rt_server *s) { return start(s->port, s->tls); }

const char *rt_proxy_url(const rt_proxy *p) { return p->url; }

void rt_proxy_delay(rt_proxy *p, int conn, int delay_ms)
{
    if (conn >= 0 && conn < MAX_CONNS)
        atomic_store(&p->delay_ms[conn], delay_ms);
}

int rt_proxy_connections(rt_proxy *p) { return atomic_load(&p->nconns); }

void rt_proxy_stop(rt_proxy *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    pthread_join(p->acceptor, NULL);
    int n = atomic_load(&p->nconns);
    for (int i = 0; i < n; i++) {
        pthread_join(p->threads[i], NULL);
        close(p->fds[i][0]);
        close(p->fds[i][1]);
    }
    close(p->listen_fd);
    free(p);
}
