/*
 * The torture test's delay proxy: a TCP proxy in front of one Redis node
 * that forwards bytes both ways and, when told, delays the traffic of one
 * chosen connection (or of all) by a few hundred milliseconds.  A delayed
 * connection's requests reach Redis late and in order, so a client that
 * timed out on it and moved on sees them applied later: what a slow network
 * path does, and what a token-checked delete queued on it can do to a lock
 * the same token took again meanwhile.
 *
 * One thread runs an event loop over every connection (poll), with a FIFO
 * of timestamped chunks per direction; a chunk is written once its due time
 * has come, and a due time never precedes the one before it (order kept).
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PX_MAX_CONNS 512
#define PX_CHUNK 16384

typedef struct chunk {
    struct chunk *next;
    int64_t due;
    size_t len, off; /* len 0: end of stream */
    char data[];
} chunk;

typedef struct dir {
    int from, to;         /* descriptors */
    chunk *head, *tail;
    int eof_read;         /* from said EOF (queued as a 0-length chunk) */
    int eof_sent;         /* ... and it was passed on (shutdown) */
} dir;

typedef struct conn {
    int cfd, sfd;
    dir up, down;         /* client -> server, server -> client */
    int64_t delay_ns, delay_until;
    int dead;
} conn;

struct t_proxy {
    int lfd, port, target_port;
    pthread_t tid;
    int running;
    atomic_int stop;
    int wake[2];
    pthread_mutex_t mu;   /* guards the requests below */
    int64_t all_delay_ns, all_until;
    int64_t next_delay_ns, next_window_ns; /* delay_next pending */
    atomic_long windows;  /* delays applied to a connection */
    conn *c[PX_MAX_CONNS];
    int n;
};

static int64_t px_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void dir_free(dir *d)
{
    while (d->head) {
        chunk *n = d->head->next;
        free(d->head);
        d->head = n;
    }
    d->tail = NULL;
}

static void conn_close(conn *c)
{
    close(c->cfd);
    close(c->sfd);
    dir_free(&c->up);
    dir_free(&c->down);
    free(c);
}

static void push(dir *d, chunk *k)
{
    if (d->tail && k->due < d->tail->due)
        k->due = d->tail->due; /* keep the order */
    k->next = NULL;
    if (d->tail)
        d->tail->next = k;
    else
        d->head = k;
    d->tail = k;
}

/* The delay a chunk read now on c gets. */
static int64_t delay_for(t_proxy *p, conn *c, int upward, int64_t now)
{
    pthread_mutex_lock(&p->mu);
    if (upward && p->next_delay_ns > 0) {
        c->delay_ns = p->next_delay_ns;
        c->delay_until = now + p->next_window_ns;
        p->next_delay_ns = 0;
        atomic_fetch_add(&p->windows, 1);
    }
    int64_t d = 0;
    if (now < p->all_until)
        d = p->all_delay_ns;
    pthread_mutex_unlock(&p->mu);
    if (now < c->delay_until && c->delay_ns > d)
        d = c->delay_ns;
    return d;
}

/* Read what is there; 0 ok, -1 the connection is finished. */
static int pump_in(t_proxy *p, conn *c, dir *d, int upward)
{
    for (;;) {
        chunk *k = malloc(sizeof *k + PX_CHUNK);
        if (!k)
            return -1;
        ssize_t r = recv(d->from, k->data, PX_CHUNK, 0);
        if (r < 0) {
            free(k);
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                       ? 0
                       : -1;
        }
        int64_t now = px_now();
        k->len = (size_t)r;
        k->off = 0;
        k->due = now + delay_for(p, c, upward, now);
        push(d, k);
        if (r == 0) {
            d->eof_read = 1;
            return 0;
        }
        if ((size_t)r < PX_CHUNK)
            return 0;
    }
}

/* Write what is due; 0 ok, -1 the connection is finished. */
static int pump_out(dir *d, int64_t now)
{
    while (d->head && d->head->due <= now) {
        chunk *k = d->head;
        if (k->len == 0) {
            shutdown(d->to, SHUT_WR);
            d->eof_sent = 1;
        } else {
            while (k->off < k->len) {
                ssize_t w = send(d->to, k->data + k->off, k->len - k->off,
                                 MSG_NOSIGNAL);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return 0;
                    if (errno == EINTR)
                        continue;
                    return -1;
                }
                k->off += (size_t)w;
            }
        }
        d->head = k->next;
        if (!d->head)
            d->tail = NULL;
        free(k);
    }
    return 0;
}

static void accept_one(t_proxy *p)
{
    int cfd = accept(p->lfd, NULL, NULL);
    if (cfd < 0)
        return;
    if (p->n >= PX_MAX_CONNS) {
        close(cfd);
        return;
    }
    int sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)p->target_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sfd < 0 || connect(sfd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (sfd >= 0)
            close(sfd);
        close(cfd); /* the node is down: so is the proxy's path to it */
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(cfd);
        close(sfd);
        return;
    }
    nonblock(cfd);
    nonblock(sfd);
    c->cfd = cfd;
    c->sfd = sfd;
    c->up = (dir){.from = cfd, .to = sfd};
    c->down = (dir){.from = sfd, .to = cfd};
    p->c[p->n++] = c;
}

static void *loop(void *arg)
{
    t_proxy *p = arg;
    struct pollfd *pf = calloc(2 + 2 * PX_MAX_CONNS, sizeof *pf);
    if (!pf)
        return NULL;
    while (!atomic_load(&p->stop)) {
        int64_t now = px_now(), next = now + 100 * 1000000LL;
        int np = 0;
        pf[np++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        pf[np++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        for (int i = 0; i < p->n; i++) {
            conn *c = p->c[i];
            short ce = 0, se = 0;
            if (!c->up.eof_read)
                ce |= POLLIN;
            if (!c->down.eof_read)
                se |= POLLIN;
            if (c->up.head) {
                if (c->up.head->due <= now)
                    se |= POLLOUT;
                else if (c->up.head->due < next)
                    next = c->up.head->due;
            }
            if (c->down.head) {
                if (c->down.head->due <= now)
                    ce |= POLLOUT;
                else if (c->down.head->due < next)
                    next = c->down.head->due;
            }
            pf[np++] = (struct pollfd){.fd = c->cfd, .events = ce};
            pf[np++] = (struct pollfd){.fd = c->sfd, .events = se};
        }
        int tmo = (int)((next - now + 999999) / 1000000);
        if (tmo < 0)
            tmo = 0;
        if (poll(pf, (nfds_t)np, tmo) < 0 && errno != EINTR)
            break;
        if (pf[1].revents & POLLIN) {
            char b[64];
            while (read(p->wake[0], b, sizeof b) > 0) {
            }
        }
        now = px_now();
        for (int i = 0; i < p->n; i++) {
            conn *c = p->c[i];
            short cr = pf[2 + 2 * i].revents, sr = pf[3 + 2 * i].revents;
            if ((cr & (POLLIN | POLLHUP | POLLERR)) && !c->up.eof_read &&
                pump_in(p, c, &c->up, 1) != 0)
                c->dead = 1;
            if ((sr & (POLLIN | POLLHUP | POLLERR)) && !c->down.eof_read &&
                pump_in(p, c, &c->down, 0) != 0)
                c->dead = 1;
            if (!c->dead && (pump_out(&c->up, now) != 0 ||
                             pump_out(&c->down, now) != 0))
                c->dead = 1;
            /* Finished: the server's side ended and was passed on, or both
             * sides ended. */
            if (c->down.eof_sent || (c->up.eof_sent && c->down.eof_read))
                c->dead = 1;
        }
        for (int i = 0; i < p->n;) {
            if (p->c[i]->dead) {
                conn_close(p->c[i]);
                p->c[i] = p->c[--p->n];
            } else {
                i++;
            }
        }
        if (pf[0].revents & POLLIN)
            accept_one(p);
    }
    free(pf);
    return NULL;
}

t_proxy *t_proxy_new(int target_port)
{
    t_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->target_port = target_port;
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int one = 1;
    if (p->lfd < 0 ||
        setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(p->lfd, 128) != 0 ||
        getsockname(p->lfd, (struct sockaddr *)&a, &len) != 0 ||
        pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        if (p->lfd >= 0)
            close(p->lfd);
        free(p);
        return NULL;
    }
    nonblock(p->lfd);
    p->port = ntohs(a.sin_port);
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

int t_proxy_run(t_proxy *p)
{
    if (p->running)
        return 0;
    if (pthread_create(&p->tid, NULL, loop, p) != 0)
        return -1;
    p->running = 1;
    return 0;
}

t_proxy *t_proxy_start(int target_port)
{
    t_proxy *p = t_proxy_new(target_port);
    if (p && t_proxy_run(p) != 0) {
        t_proxy_stop(p);
        return NULL;
    }
    return p;
}

int t_proxy_port(const t_proxy *p) { return p ? p->port : -1; }

static void poke(t_proxy *p)
{
    if (write(p->wake[1], "x", 1) < 0) {
    }
}

void t_proxy_delay_all(t_proxy *p, int delay_ms, int window_ms)
{
    pthread_mutex_lock(&p->mu);
    p->all_delay_ns = (int64_t)delay_ms * 1000000;
    p->all_until = px_now() + (int64_t)window_ms * 1000000;
    pthread_mutex_unlock(&p->mu);
    poke(p);
}

void t_proxy_delay_next(t_proxy *p, int delay_ms, int window_ms)
{
    pthread_mutex_lock(&p->mu);
    p->next_delay_ns = (int64_t)delay_ms * 1000000;
    p->next_window_ns = (int64_t)window_ms * 1000000;
    pthread_mutex_unlock(&p->mu);
    poke(p);
}

long t_proxy_windows(const t_proxy *p)
{
    return p ? atomic_load(&((t_proxy *)p)->windows) : 0;
}

void t_proxy_stop(t_proxy *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    poke(p);
    if (p->running)
        pthread_join(p->tid, NULL);
    for (int i = 0; i < p->n; i++)
        conn_close(p->c[i]);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* ---- PSUBSCRIBE * listeners ------------------------------------------------ */

struct t_psub {
    int n, ports[T_PSUB_MAX];
    int fd[T_PSUB_MAX];
    int64_t retry_at[T_PSUB_MAX];
    pthread_t tid;
    atomic_int stop;
    atomic_long subscribed; /* (re)subscriptions made */
};

static int psub_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char cmd[] = "*2\r\n$10\r\nPSUBSCRIBE\r\n$1\r\n*\r\n";
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        send(fd, cmd, sizeof cmd - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof cmd - 1)) {
        close(fd);
        return -1;
    }
    nonblock(fd);
    return fd;
}

static void *psub_loop(void *arg)
{
    t_psub *s = arg;
    char buf[65536];
    while (!atomic_load(&s->stop)) {
        struct pollfd pf[T_PSUB_MAX];
        int64_t now = px_now();
        for (int i = 0; i < s->n; i++) {
            if (s->fd[i] < 0 && now >= s->retry_at[i]) {
                s->fd[i] = psub_connect(s->ports[i]);
                if (s->fd[i] >= 0)
                    atomic_fetch_add(&s->subscribed, 1);
                else
                    s->retry_at[i] = now + 100 * 1000000LL;
            }
            pf[i] = (struct pollfd){.fd = s->fd[i], .events = POLLIN};
        }
        if (poll(pf, (nfds_t)s->n, 50) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < s->n; i++) {
            if (s->fd[i] < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r;
            while ((r = recv(s->fd[i], buf, sizeof buf, 0)) > 0) {
            }
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                           errno != EINTR)) {
                close(s->fd[i]); /* killed, or the node restarted */
                s->fd[i] = -1;
                s->retry_at[i] = px_now() + 100 * 1000000LL;
            }
        }
    }
    return NULL;
}

t_psub *t_psub_start(const int *ports, int n)
{
    t_psub *s = calloc(1, sizeof *s);
    if (!s || n > T_PSUB_MAX) {
        free(s);
        return NULL;
    }
    s->n = n;
    for (int i = 0; i < n; i++) {
        s->ports[i] = ports[i];
        s->fd[i] = -1;
    }
    if (pthread_create(&s->tid, NULL, psub_loop, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

long t_psub_subscriptions(const t_psub *s)
{
    return s ? atomic_load(&((t_psub *)s)->subscribed) : 0;
}

void t_psub_stop(t_psub *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->tid, NULL);
    for (int i = 0; i < s->n; i++)
        if (s->fd[i] >= 0)
            close(s->fd[i]);
    free(s);
}
