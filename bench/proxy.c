/*
 * redlock-bench: a TCP proxy that delays every byte by a fixed time.
 *
 * This kernel has no netem, and five redis-servers on two cores are
 * CPU-bound, so to see what N nodes cost across a network the benchmark
 * puts one of these in front of each node.  Per connection, each direction
 * is a pump of two threads: a reader that timestamps each chunk it reads
 * and queues it, and a writer that sends each chunk once its time + delay
 * has come.  A constant delay on a FIFO keeps the order.  Thread-per-
 * direction is wasteful but simple, and there are only a handful of
 * connections.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK_MAX 65536

struct chunk {
    struct chunk *next;
    int64_t due_ns;
    size_t len; /* 0: end of stream */
    char data[];
};

struct pump {
    int from, to;
    int64_t delay_ns;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct chunk *head, *tail;
    pthread_t reader, writer;
    int reader_started, writer_started;
};

struct conn {
    struct conn *next;
    int client_fd, server_fd;
    struct pump up, down; /* client -> server, server -> client */
};

struct bn_proxy {
    int lfd;
    int64_t delay_ns;
    struct sockaddr_storage target;
    socklen_t target_len;
    pthread_t acceptor;
    atomic_int stop;
    pthread_mutex_t mu;
    struct conn *conns;
};

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void pump_push(struct pump *p, struct chunk *c)
{
    c->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = c;
    else
        p->head = c;
    p->tail = c;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *pump_reader(void *arg)
{
    struct pump *p = arg;
    char *buf = malloc(CHUNK_MAX);
    for (;;) {
        ssize_t n = buf ? read(p->from, buf, CHUNK_MAX) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        int64_t now = bn_now_ns();
        size_t len = n > 0 ? (size_t)n : 0;
        struct chunk *c = malloc(sizeof *c + len);
        while (c == NULL && len == 0) { /* the end marker must get through */
            bn_sleep_ns(1000000);
            c = malloc(sizeof *c);
        }
        if (c == NULL) {
            n = 0; /* out of memory: end the stream */
            c = malloc(sizeof *c);
            if (c == NULL)
                break;
            len = 0;
        }
        c->due_ns = now + p->delay_ns;
        c->len = len;
        if (len)
            memcpy(c->data, buf, len);
        pump_push(p, c);
        if (n <= 0)
            break;
    }
    free(buf);
    return NULL;
}

static void *pump_writer(void *arg)
{
    struct pump *p = arg;
    int failed = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->head == NULL)
            pthread_cond_wait(&p->cv, &p->mu);
        struct chunk *c = p->head;
        p->head = c->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);

        if (c->len == 0) {
            free(c);
            shutdown(p->to, SHUT_WR);
            break;
        }
        if (!failed) {
            bn_sleep_until_ns(c->due_ns);
            size_t off = 0;
            while (off < c->len) {
                ssize_t w = send(p->to, c->data + off, c->len - off, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    /* the receiver is gone: stop reading, drop the rest */
                    failed = 1;
                    shutdown(p->from, SHUT_RD);
                    break;
                }
                off += (size_t)w;
            }
        }
        free(c);
    }
    return NULL;
}

static int pump_start(struct pump *p, int from, int to, int64_t delay_ns)
{
    p->from = from;
    p->to = to;
    p->delay_ns = delay_ns;
    p->head = p->tail = NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->writer_started = pthread_create(&p->writer, NULL, pump_writer, p) == 0;
    if (!p->writer_started)
        return -1;
    p->reader_started = pthread_create(&p->reader, NULL, pump_reader, p) == 0;
    if (!p->reader_started) {
        /* let the writer end */
        struct chunk *c = malloc(sizeof *c);
        if (c == NULL) {
            pthread_cancel(p->writer);
        } else {
            c->len = 0;
            pump_push(p, c);
        }
        return -1;
    }
    return 0;
}

static void pump_join(struct pump *p)
{
    if (p->reader_started)
        pthread_join(p->reader, NULL);
    if (p->writer_started)
        pthread_join(p->writer, NULL);
    if (p->reader_started || p->writer_started) {
        struct chunk *c = p->head;
        while (c) {
            struct chunk *next = c->next;
            free(c);
            c = next;
        }
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    p->reader_started = p->writer_started = 0;
}

static void *acceptor(void *arg)
{
    bn_proxy *px = arg;
    while (!atomic_load(&px->stop)) {
        int cfd = accept4(px->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (atomic_load(&px->stop))
                break;
            bn_sleep_ns(1000000);
            continue;
        }
        int sfd = socket(px->target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sfd < 0 || connect(sfd, (struct sockaddr *)&px->target, px->target_len) != 0) {
            if (sfd >= 0)
                close(sfd);
            close(cfd);
            continue;
        }
        nodelay(cfd);
        nodelay(sfd);
        struct conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(sfd);
            close(cfd);
            continue;
        }
        c->client_fd = cfd;
        c->server_fd = sfd;
        if (pump_start(&c->up, cfd, sfd, px->delay_ns) != 0 ||
            pump_start(&c->down, sfd, cfd, px->delay_ns) != 0) {
            shutdown(cfd, SHUT_RDWR);
            shutdown(sfd, SHUT_RDWR);
        }
        pthread_mutex_lock(&px->mu);
        c->next = px->conns;
        px->conns = c;
        pthread_mutex_unlock(&px->mu);
    }
    return NULL;
}

bn_proxy *bn_proxy_start(const char *target_host, int target_port, int64_t delay_us,
                         int *port)
{
    bn_proxy *px = calloc(1, sizeof *px);
    if (px == NULL)
        return NULL;
    px->lfd = -1;
    px->delay_ns = delay_us * 1000;
    pthread_mutex_init(&px->mu, NULL);

    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    char service[16];
    snprintf(service, sizeof service, "%d", target_port);
    int gai = getaddrinfo(target_host, service, &hints, &ai);
    if (gai != 0 || ai == NULL || ai->ai_addrlen > sizeof px->target) {
        fprintf(stderr, "redlock-bench: proxy target %s: %s\n", target_host,
                gai ? gai_strerror(gai) : "unusable address");
        if (ai)
            freeaddrinfo(ai);
        goto fail;
    }
    memcpy(&px->target, ai->ai_addr, ai->ai_addrlen);
    px->target_len = ai->ai_addrlen;
    freeaddrinfo(ai);

    px->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (px->lfd < 0)
        goto fail_errno;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(px->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(px->lfd, 64) != 0 ||
        getsockname(px->lfd, (struct sockaddr *)&a, &len) != 0)
        goto fail_errno;
    *port = ntohs(a.sin_port);
    if (pthread_create(&px->acceptor, NULL, acceptor, px) != 0) {
        fprintf(stderr, "redlock-bench: proxy: cannot start a thread\n");
        goto fail;
    }
    return px;

fail_errno:
    fprintf(stderr, "redlock-bench: proxy: %s\n", strerror(errno));
fail:
    if (px->lfd >= 0)
        close(px->lfd);
    pthread_mutex_destroy(&px->mu);
    free(px);
    return NULL;
}

void bn_proxy_stop(bn_proxy *px)
{
    if (px == NULL)
        return;
    atomic_store(&px->stop, 1);
    /* wakes a blocked accept() on Linux */
    shutdown(px->lfd, SHUT_RDWR);
    pthread_join(px->acceptor, NULL);
    close(px->lfd);
    struct conn *c = px->conns;
    px->conns = NULL;
    while (c) {
        struct conn *next = c->next;
        shutdown(c->client_fd, SHUT_RDWR);
        shutdown(c->server_fd, SHUT_RDWR);
        pump_join(&c->up);
        pump_join(&c->down);
        close(c->client_fd);
        close(c->server_fd);
        free(c);
        c = next;
    }
    pthread_mutex_destroy(&px->mu);
    free(px);
}
