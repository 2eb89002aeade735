/*
 * Opening sockets ourselves, for hiredis to wrap (redisConnectFd): created
 * with SOCK_CLOEXEC, so that no fork+exec in another thread can inherit
 * one between socket() and a later fcntl(), and SOCK_NONBLOCK, so that
 * connect() completes inside the exchange's poll(), concurrently with the
 * other nodes.  Name lookup (getaddrinfo) still blocks, as in hiredis.
 */
#include "internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Probe a dead peer after 15 s idle (hiredis's choice), so that a
 * connection kept in the pool across a network failure is found out. */
#define KEEPALIVE_S 15

static void tune_tcp(int fd)
{
    int on = 1, idle = KEEPALIVE_S, intvl = KEEPALIVE_S / 3, cnt = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

static int started(int fd)
{
    return errno == EINPROGRESS || errno == EINTR ? fd : -1;
}

static int open_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path); /* checked by uri.c */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 || started(fd) >= 0)
        return fd;
    snprintf(err, errlen, "%s", strerror(errno));
    close(fd);
    return -1;
}

static int open_tcp(const char *host, int port, char *err, size_t errlen)
{
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints, *list = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, service, &hints, &list);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve: %s", gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    snprintf(err, errlen, "no address");
    for (struct addrinfo *a = list; a; a = a->ai_next) {
        fd = socket(a->ai_family,
                    a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    a->ai_protocol);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || started(fd) >= 0) {
            tune_tcp(fd);
            break;
        }
        /* refused at once (loopback): try the next address */
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    return fd;
}

int redlock__sock_open(const redlock__url *u, char *err, size_t errlen)
{
    return u->is_unix ? open_unix(u->path, err, errlen)
                      : open_tcp(u->host, u->port, err, errlen);
}
