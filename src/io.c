/*
 * Socket I/O for many connections at once: write to all, then poll all
 * under one monotonic deadline and parse replies with hiredis's reader.
 *
 * Why not redisGetReply(): it blocks on one connection at a time, bounded
 * only by SO_RCVTIMEO, and hiredis 0.14 writes with plain write(), which
 * raises SIGPIPE on a closed socket.  We keep sockets non-blocking, write
 * with send(MSG_NOSIGNAL) from our own buffer, and use hiredis only to
 * connect and to parse.
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int redlock__conn_append_call(redlock__conn *c, const redlock__call *call,
                              int eval)
{
    const char *argv[REDLOCK__MAX_ARGS + 3];
    size_t len[REDLOCK__MAX_ARGS + 3];
    int argc = 0;
    char numkeys[8];

    if (call->script) {
        const redlock__script *s = call->script;
        argv[argc] = eval ? "EVAL" : "EVALSHA";
        len[argc] = strlen(argv[argc]);
        argc++;
        argv[argc] = eval ? s->body : s->sha;
        len[argc] = strlen(argv[argc]);
        argc++;
        len[argc] = (size_t)snprintf(numkeys, sizeof numkeys, "%d", s->numkeys);
        argv[argc++] = numkeys;
    }
    for (int i = 0; i < call->argc; i++) {
        argv[argc] = call->argv[i];
        len[argc++] = call->argvlen[i];
    }
    return redlock__resp_append(&c->out, argc, argv, len);
}

static void batch_fail(redlock__batch *b, redlock_status st, const char *what)
{
    if (b->st != REDLOCK_OK)
        return;
    b->st = st;
    snprintf(b->err, sizeof b->err, "%.100s: %.150s", b->node->name, what);
}

/* Send what the socket takes now.  0 while healthy, -1 on failure. */
static int flush_some(redlock__batch *b)
{
    redlock__conn *c = b->conn;
    while (c->sent < c->out.len) {
        ssize_t w = send(c->ctx->fd, c->out.data + c->sent,
                         c->out.len - c->sent, MSG_NOSIGNAL);
        if (w > 0) {
            c->sent += (size_t)w;
            b->uncertain = 1;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        char msg[128];
        snprintf(msg, sizeof msg, "write failed: %s", strerror(errno));
        batch_fail(b, REDLOCK_IO, msg);
        return -1;
    }
    c->out.len = c->sent = 0;
    return 0;
}

/* Take every complete reply out of the reader. */
static int drain_replies(redlock__batch *b)
{
    while (b->pending > 0) {
        void *reply = NULL;
        if (redisGetReplyFromReader(b->conn->ctx, &reply) != REDIS_OK) {
            char msg[160];
            snprintf(msg, sizeof msg, "bad reply: %s", b->conn->ctx->errstr);
            batch_fail(b, REDLOCK_IO, msg);
            return -1;
        }
        if (!reply)
            return 0;
        while (b->cursor < b->ncalls && b->calls[b->cursor].reply)
            b->cursor++;
        if (b->cursor >= b->ncalls) { /* more replies than commands */
            freeReplyObject(reply);
            batch_fail(b, REDLOCK_IO, "protocol out of step");
            return -1;
        }
        b->calls[b->cursor++].reply = reply;
        b->pending--;
    }
    return 0;
}

static int read_some(redlock__batch *b)
{
    if (redisBufferRead(b->conn->ctx) != REDIS_OK) {
        redisContext *ctx = b->conn->ctx;
        char msg[160];
        if (ctx->err == REDIS_ERR_EOF)
            snprintf(msg, sizeof msg, "connection closed by the server");
        else
            snprintf(msg, sizeof msg, "read failed: %s", ctx->errstr);
        batch_fail(b, REDLOCK_IO, msg);
        return -1;
    }
    return drain_replies(b);
}

static int active(const redlock__batch *b)
{
    return b->st == REDLOCK_OK && b->conn &&
           (b->pending > 0 || b->conn->sent < b->conn->out.len);
}

void redlock__io_run(redlock__batch *b, int n, int64_t deadline_ns)
{
    struct pollfd pfd[REDLOCK_MAX_NODES];
    int idx[REDLOCK_MAX_NODES];

    for (int i = 0; i < n; i++) {
        b[i].cursor = 0;
        if (active(&b[i]))
            flush_some(&b[i]);
    }
    for (;;) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (!active(&b[i]))
                continue;
            redlock__conn *c = b[i].conn;
            pfd[k].fd = c->ctx->fd;
            pfd[k].events = c->sent < c->out.len ? POLLOUT : 0;
            if (b[i].pending > 0)
                pfd[k].events |= POLLIN;
            pfd[k].revents = 0;
            idx[k++] = i;
        }
        if (k == 0)
            return;
        int64_t left = deadline_ns - redlock__now_ns();
        if (left <= 0) {
            for (int j = 0; j < k; j++)
                batch_fail(&b[idx[j]], REDLOCK_IO, "timed out");
            return;
        }
        int rc = poll(pfd, (nfds_t)k, (int)((left + 999999) / 1000000));
        if (rc < 0 && errno != EINTR) {
            for (int j = 0; j < k; j++)
                batch_fail(&b[idx[j]], REDLOCK_IO, "poll failed");
            return;
        }
        for (int j = 0; j < k && rc > 0; j++) {
            redlock__batch *bj = &b[idx[j]];
            short ev = pfd[j].revents;
            if (ev & POLLOUT)
                if (flush_some(bj) != 0)
                    continue;
            /* POLLHUP/POLLERR: read to learn why (EOF or the error). */
            if (ev & (POLLIN | POLLHUP | POLLERR))
                read_some(bj);
            else if (ev & POLLNVAL)
                batch_fail(bj, REDLOCK_IO, "socket invalid");
        }
    }
}
