/*
 * Socket I/O for many connections at once: write to all, then poll all
 * under one monotonic deadline and parse replies with hiredis's reader.
 *
 * Why not redisGetReply(): it blocks on one connection at a time, bounded
 * only by SO_RCVTIMEO, and hiredis 0.14 writes with plain write(), which
 * raises SIGPIPE on a closed socket.  We keep sockets non-blocking, write
 * with send(MSG_NOSIGNAL) from our own buffer, and use hiredis only to
 * connect and to parse.  A TLS connection goes through the same loop:
 * its handshake is one more state after connect(), and its bytes pass
 * through OpenSSL (tls.c) on their way to and from the same buffers.
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int redlock__conn_append_call(redlock__conn *c, const redlock__call *call,
                              int eval)
{
    const char *fixed[REDLOCK__MAX_ARGS + 3];
    size_t fixedlen[REDLOCK__MAX_ARGS + 3];
    const char **argv = fixed;
    size_t *len = fixedlen;
    int argc = 0;
    char numkeys[24];

    if (call->xargc > 0) { /* a semaphore's slots: rare, and bounded */
        size_t n = (size_t)REDLOCK__MAX_ARGS + 3 + (size_t)call->xargc;
        argv = malloc(n * sizeof *argv);
        len = malloc(n * sizeof *len);
        if (!argv || !len) {
            free(argv);
            free(len);
            return -1;
        }
    }
    if (call->script) {
        const redlock__script *s = call->script;
        argv[argc] = eval ? "EVAL" : "EVALSHA";
        len[argc] = strlen(argv[argc]);
        argc++;
        argv[argc] = eval ? s->body : s->sha;
        len[argc] = strlen(argv[argc]);
        argc++;
        len[argc] = redlock__fmt_i64(numkeys, s->numkeys + call->xkeys);
        argv[argc++] = numkeys;
    }
    /* Keys first: the script's own, then the extra ones, then the rest. */
    int own_keys = call->script ? call->script->numkeys : 0;
    if (call->xargc == 0 || own_keys > call->argc)
        own_keys = call->argc;
    for (int i = 0; i < own_keys; i++) {
        argv[argc] = call->argv[i];
        len[argc++] = call->argvlen[i];
    }
    for (int i = 0; i < call->xargc; i++) {
        argv[argc] = call->xargv[i];
        len[argc++] = call->xargvlen[i];
    }
    for (int i = own_keys; i < call->argc; i++) {
        argv[argc] = call->argv[i];
        len[argc++] = call->argvlen[i];
    }
    int rc = redlock__resp_append(&c->out, argc, argv, len);
    if (argv != fixed) {
        free(argv);
        free(len);
    }
    return rc;
}

static void batch_fail(redlock__batch *b, redlock_status st, const char *what)
{
    if (b->st != REDLOCK_OK)
        return;
    b->st = st;
    snprintf(b->err, sizeof b->err, "%.100s: %.150s", b->node->name, what);
    /* The connection is closed, never reused: make that close a reset, so
     * that the kernel drops what is still unsent instead of delivering it
     * to the server later, behind requests made since on other
     * connections. */
    if (b->conn && b->conn->ctx && b->conn->ctx->fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(b->conn->ctx->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
}

static int conn_fail(redlock__conn *c, redlock_status st, const char *what,
                     int err)
{
    c->fail_st = st;
    snprintf(c->fail, sizeof c->fail, "%s%s%s", what, err ? ": " : "",
             err ? strerror(err) : "");
    return -1;
}

int redlock__conn_flush(redlock__conn *c)
{
    if (c->ssl) {
        if (c->handshaking)
            return 0; /* the handshake's turn: see step() */
        if (redlock__tls_write(c) != 0)
            return -1;
        if (c->sent == c->out.len)
            c->out.len = c->sent = 0;
        return 0;
    }
    while (c->sent < c->out.len) {
        ssize_t w = send(c->ctx->fd, c->out.data + c->sent,
                         c->out.len - c->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c->sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return conn_fail(c, REDLOCK_IO, "write failed", errno);
    }
    c->out.len = c->sent = 0;
    return 0;
}

/* A plaintext connection's first bytes: a TLS record (a handshake or an
 * alert) means we reached a TLS port; no RESP reply starts so. */
static int plain_check(redlock__conn *c, const char *buf)
{
    if (c->rx == 0 && (buf[0] == 0x15 || buf[0] == 0x16)) {
        c->fail_st = REDLOCK_TLS;
        snprintf(c->fail, sizeof c->fail,
                 "the server speaks TLS on this port: use rediss:// (or the "
                 "tls option)");
        return -1;
    }
    return 0;
}

/* A plaintext connection closed before any reply: what Redis's TLS port
 * does with plaintext (a reset, no alert), but also a server killed. */
static int closed_fail(redlock__conn *c, int err)
{
    const char *hint = c->rx == 0 ? " before any reply (if that port "
                                    "speaks TLS, use rediss://)"
                                  : "";
    c->fail_st = REDLOCK_IO;
    if (err)
        snprintf(c->fail, sizeof c->fail, "read failed: %s%s", strerror(err),
                 hint);
    else
        snprintf(c->fail, sizeof c->fail, "connection closed by the server%s",
                 hint);
    return -1;
}

int redlock__conn_read(redlock__conn *c)
{
    char buf[16384];
    /* TLS: until OpenSSL would block, bounded against a flood (the
     * caller's size check ends that; poll is told of what is left). */
    for (int i = 0; i < 64; i++) {
        ssize_t r;
        if (c->ssl) {
            r = redlock__tls_read(c, buf, sizeof buf);
            if (r <= 0)
                return (int)r;
        } else {
            r = recv(c->ctx->fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0)
                return closed_fail(c, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return 0;
            if (r < 0)
                return closed_fail(c, errno);
            if (plain_check(c, buf) != 0)
                return -1;
            c->rx += (size_t)r;
        }
        if (redisReaderFeed(c->ctx->reader, buf, (size_t)r) != REDIS_OK)
            return conn_fail(c, REDLOCK_IO, "bad reply", 0);
        if (!c->ssl || redlock__reply_too_big(c->ctx))
            return 0; /* plaintext: poll() sees the rest */
    }
    return 0;
}

short redlock__conn_events(const redlock__conn *c, int out, int in)
{
    if (c->connecting)
        return POLLOUT;
    if (c->ssl && c->handshaking)
        return c->tls_events;
    short ev = in ? POLLIN : 0;
    if (c->ssl && c->tls_events)
        ev |= c->tls_events; /* a write that waits to read, or the reverse */
    else if (out)
        ev |= POLLOUT;
    return ev;
}

/* Send what the socket takes now.  0 while healthy, -1 on failure. */
static int flush_some(redlock__batch *b)
{
    size_t before = b->conn->out.len - b->conn->sent;
    if (redlock__conn_flush(b->conn) != 0) {
        batch_fail(b, b->conn->fail_st, b->conn->fail);
        return -1;
    }
    if (b->conn->out.len - b->conn->sent < before)
        b->uncertain = 1; /* something left: the server may act on it */
    return 0;
}

/* A reply owed before the caller's: the handshake's, or a ghost delete's
 * (whose answer, even an error, settles it). */
static int take_prefix(redlock__batch *b, redisReply *r)
{
    redlock__prefix *p = &b->conn->prefix;
    int is_auth = p->auth, is_select = !p->auth && p->select;
    int is_role = !is_auth && !is_select && p->role;
    if (is_auth)
        p->auth = 0;
    else if (is_select)
        p->select = 0;
    else if (is_role)
        p->role = 0;
    p->count--;
    if (is_role || (is_auth && r->type == REDIS_REPLY_ERROR &&
                    b->node->is_sentinel)) { /* sentinel.c judges */
        char msg[160];
        redlock_status st =
            redlock__sentinel_prefix(b->node, r, is_role, msg, sizeof msg);
        redlock__reply_free(r);
        if (st == REDLOCK_OK)
            return 0;
        batch_fail(b, st, msg);
        return -1;
    }
    if (!is_auth && !is_select && redlock__sentinel_moved(b->node, r)) {
        /* A ghost delete that a demoted master refused is still owed. */
        char msg[160];
        snprintf(msg, sizeof msg, "%.140s", r->str);
        redlock__reply_free(r);
        batch_fail(b, REDLOCK_IO, msg);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR && (is_auth || is_select)) {
        char msg[160];
        const redlock__url *u = &b->node->url;
        if (is_auth)
            snprintf(msg, sizeof msg, "AUTH%s%.40s refused: %.100s",
                     u->user ? " as user " : "", u->user ? u->user : "",
                     r->str);
        else
            snprintf(msg, sizeof msg, "SELECT %d refused: %.100s", u->db,
                     r->str);
        batch_fail(b, is_auth ? REDLOCK_AUTH : redlock__reply_error_status(r),
                   msg);
        redlock__reply_free(r);
        return -1;
    }
    /* A ghost delete a cluster's master redirected (the slot moved, or is
     * moving): not applied, so still owed, to whoever owns it now. */
    if (!is_auth && !is_select && b->node->parent &&
        r->type == REDIS_REPLY_ERROR &&
        (strncmp(r->str, "MOVED ", 6) == 0 || strncmp(r->str, "ASK ", 4) == 0 ||
         strncmp(r->str, "TRYAGAIN", 8) == 0 ||
         strncmp(r->str, "CLUSTERDOWN", 11) == 0)) {
        b->conn->prefix.ghost_redo = 1;
        redlock__cluster_stale(b->node->parent);
    }
    redlock__reply_free(r);
    return 0;
}

/* A reply still incomplete after this much is hostile or broken. */
static int check_size(redlock__batch *b)
{
    if (!redlock__reply_too_big(b->conn->ctx))
        return 0;
    batch_fail(b, REDLOCK_IO, "reply too large (over 1 MiB)");
    return -1;
}

/* Take every complete reply out of the reader. */
static int drain_replies(redlock__batch *b)
{
    while (b->pending > 0 || b->conn->prefix.count > 0) {
        void *reply = NULL;
        if (redisGetReplyFromReader(b->conn->ctx, &reply) != REDIS_OK) {
            char msg[160];
            if (b->conn->refused_elements)
                snprintf(msg, sizeof msg,
                         "bad reply: an array of %d elements (refused)",
                         b->conn->refused_elements);
            else
                snprintf(msg, sizeof msg, "bad reply: %s",
                         b->conn->ctx->errstr);
            batch_fail(b, REDLOCK_IO, msg);
            return -1;
        }
        if (!reply)
            return 0;
        if (b->conn->prefix.count > 0) {
            if (take_prefix(b, reply) != 0)
                return -1;
            continue;
        }
        while (b->cursor < b->ncalls && b->calls[b->cursor].reply)
            b->cursor++;
        if (b->cursor >= b->ncalls) { /* more replies than commands */
            redlock__reply_free(reply);
            batch_fail(b, REDLOCK_IO, "protocol out of step");
            return -1;
        }
        b->calls[b->cursor++].reply = reply;
        b->pending--;
        if (redlock__sentinel_moved(b->node, reply)) {
            /* From a Sentinel node: a failover, which a wait rides out. */
            char msg[160];
            snprintf(msg, sizeof msg, "%.140s", ((redisReply *)reply)->str);
            batch_fail(b, REDLOCK_IO, msg);
            return -1;
        }
    }
    return 0;
}

static int read_some(redlock__batch *b)
{
    if (redlock__conn_read(b->conn) != 0) {
        batch_fail(b, b->conn->fail_st, b->conn->fail);
        return -1;
    }
    return drain_replies(b) != 0 ? -1 : check_size(b);
}

/* The non-blocking connect() finished: did it succeed? */
static int connect_done(redlock__batch *b)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(b->conn->ctx->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "cannot connect: %s", strerror(err));
        batch_fail(b, REDLOCK_IO, msg);
        return -1;
    }
    /* Connected: from now on the socket is blocking, with a receive
     * timeout of a slice of the node's budget.  Writes say MSG_DONTWAIT and
     * reads through hiredis follow a poll(), so only the one-node fast
     * path below ever blocks, and never longer than the slice. */
    int fd = b->conn->ctx->fd;
    int64_t slice = b->node->recv_slice_ms;
    struct timeval tv = {.tv_sec = slice / 1000,
                         .tv_usec = (suseconds_t)(slice % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    b->conn->connecting = 0;
    b->conn->handshaking = b->conn->ssl != NULL;
    return 0;
}

/* One connection waiting for replies, all of its output sent: wait in
 * recv() itself rather than in poll() and then read(), which saves a
 * system call per command.  Each recv() is bounded by the socket's receive
 * timeout (a slice of the budget) and is made only while at least a slice
 * is left, so the deadline holds exactly.  0 when done or failed, 1 when
 * the rest must go through poll(). */
static int wait_one(redlock__batch *b, int64_t deadline_ns)
{
    redlock__conn *c = b->conn;
    int64_t slice_ns = b->node->recv_slice_ms * 1000000;
    char buf[16384];
    if (c->ssl)
        return 1; /* OpenSSL reads through poll(): see step() */
    while (b->st == REDLOCK_OK && (b->pending > 0 || c->prefix.count > 0)) {
        if (deadline_ns - redlock__now_ns() < slice_ns)
            return 1;
        ssize_t r = recv(c->ctx->fd, buf, sizeof buf, 0);
        if (r > 0) {
            if (plain_check(c, buf) != 0) {
                batch_fail(b, c->fail_st, c->fail);
                return 0;
            }
            c->rx += (size_t)r;
            if (redisReaderFeed(c->ctx->reader, buf, (size_t)r) != REDIS_OK) {
                batch_fail(b, REDLOCK_IO, "bad reply");
                return 0;
            }
            if (drain_replies(b) == 0)
                check_size(b);
        } else if (r == 0 ||
                   (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            closed_fail(c, r == 0 ? 0 : errno);
            batch_fail(b, c->fail_st, c->fail);
        }
    }
    return 0;
}

/* Move one connection on after poll() reported ev: connect, handshake,
 * write, read.  TLS does not map one-to-one onto socket events (a read
 * may need to write, a write to read, OpenSSL may hold bytes already
 * read), so a TLS connection tries both directions whatever woke it. */
static void step(redlock__batch *b, short ev)
{
    redlock__conn *c = b->conn;
    if (c->connecting && connect_done(b) != 0)
        return;
    if (c->handshaking) {
        int r = redlock__tls_handshake(c);
        if (r < 0)
            batch_fail(b, c->fail_st, c->fail);
        if (r != 0)
            return;
        ev = POLLOUT | POLLIN; /* done: write at once, read what came */
    }
    if (c->sent < c->out.len && (c->ssl || (ev & POLLOUT)))
        if (flush_some(b) != 0)
            return;
    /* POLLHUP/POLLERR: read to learn why (EOF or the error). */
    if ((b->pending > 0 || c->prefix.count > 0) &&
        (c->ssl || (ev & (POLLIN | POLLHUP | POLLERR))))
        read_some(b);
}

static int active(const redlock__batch *b)
{
    const redlock__conn *c = b->conn;
    return b->st == REDLOCK_OK && c &&
           (c->connecting || c->handshaking || b->pending > 0 ||
            c->prefix.count > 0 ||
            c->sent < c->out.len);
}

/* A connection still connecting is bounded by the connect timeout too. */
static int64_t batch_deadline(const redlock__batch *b, int64_t deadline_ns)
{
    const redlock__conn *c = b->conn;
    return (c->connecting || c->handshaking) &&
                   c->connect_deadline_ns < deadline_ns
               ? c->connect_deadline_ns
               : deadline_ns;
}

/* Every reply is in. */
static int complete(const redlock__batch *b)
{
    return b->st == REDLOCK_OK && b->conn && !active(b);
}

int redlock__batch_complete(const redlock__batch *b)
{
    return complete(b);
}

/* After the decision, how long a batch still running is waited for: a
 * generous margin (twice the decision's time, at least a quarter of its
 * budget), so that a healthy node a little behind the others is not cut
 * off, and a node that stalled lately and is tried again (once per node
 * timeout: see quorum.c, skip_slow) has the time to show it is back, with
 * whatever it had to work through on resuming. */
static int64_t grace_ns(const redlock__batch *b, int64_t decided_after_ns)
{
    int64_t floor_ns = (int64_t)b->node->opts->node_timeout_ms * 250000;
    int64_t g = 2 * decided_after_ns;
    return g > floor_ns ? g : floor_ns;
}

/* Remember which nodes answered in full and which did not answer. */
static void note_outcomes(redlock__batch *b, int n)
{
    for (int i = 0; i < n; i++)
        if (complete(&b[i]) && atomic_exchange(&b[i].node->slow, 0) &&
            b[i].node->client)
            redlock__watchdog_node_back(b[i].node->client);
}

/* A batch that timed out (or was abandoned) leaves its node marked slow. */
static void give_up(redlock__batch *b, const char *why, int abandoned)
{
    batch_fail(b, REDLOCK_IO, why);
    if (abandoned)
        b->uncertain = 1; /* whatever was sent may still be applied */
    atomic_store(&b->node->slow, 1);
}

void redlock__io_run(redlock__batch *b, int n, int64_t deadline_ns)
{
    redlock__io_run_until(b, n, deadline_ns, NULL);
}

void redlock__io_run_until(redlock__batch *b, int n, int64_t deadline_ns,
                           const redlock__decider *d)
{
    /* A cluster's batch is one part per master (cluster_io.c): more than
     * REDLOCK_MAX_NODES connections at once then. */
    struct pollfd pfd_fixed[REDLOCK_MAX_NODES], *pfd = pfd_fixed;
    int idx_fixed[REDLOCK_MAX_NODES], *idx = idx_fixed;
    if (n > REDLOCK_MAX_NODES) {
        pfd = malloc((size_t)n * sizeof *pfd);
        idx = malloc((size_t)n * sizeof *idx);
        if (!pfd || !idx) {
            free(pfd);
            free(idx);
            for (int i = 0; i < n; i++)
                batch_fail(&b[i], REDLOCK_NOMEM, "out of memory");
            return;
        }
    }

    int nactive = 0, last = -1;
    for (int i = 0; i < n; i++) {
        b[i].cursor = 0;
        if (active(&b[i]) && !b[i].conn->connecting)
            flush_some(&b[i]);
        if (active(&b[i])) {
            nactive++;
            last = i;
        }
    }
    if (nactive == 1 && !b[last].conn->connecting &&
        b[last].conn->sent == b[last].conn->out.len &&
        wait_one(&b[last], deadline_ns) == 0) {
        note_outcomes(b, n);
        if (pfd != pfd_fixed) {
            free(pfd);
            free(idx);
        }
        return;
    }
    int64_t t0 = redlock__now_ns();
    int64_t decided_at = -1, decided_after = 0;
    int asked = -1; /* batches finished when decided() was last asked */
    for (;;) {
        int k = 0, ready = 0;
        int64_t now = redlock__now_ns(), wake = INT64_MAX;
        if (d && decided_at < 0) {
            int done = 0, finished = 0;
            for (int i = 0; i < n; i++) {
                if (b[i].st != REDLOCK_OK)
                    finished++;
                else if (complete(&b[i])) {
                    done++;
                    finished++;
                }
            }
            if (finished != asked) {
                asked = finished;
                if (done >= d->quorum && finished < n &&
                    d->decided(b, n, d->arg)) {
                    decided_at = now;
                    decided_after = now - t0;
                }
            }
        }
        for (int i = 0; i < n; i++) {
            if (!active(&b[i]))
                continue;
            redlock__conn *c = b[i].conn;
            int64_t dl = batch_deadline(&b[i], deadline_ns);
            if (now >= dl) {
                give_up(&b[i],
                        c->connecting    ? "timed out connecting"
                        : c->handshaking && c->rx == 0
                            ? "timed out in the TLS handshake (no answer "
                              "to it: does that port speak TLS?)"
                        : c->handshaking ? "timed out in the TLS handshake"
                                         : "timed out",
                        0);
                continue;
            }
            if (decided_at >= 0) {
                int64_t soft = decided_at + grace_ns(&b[i], decided_after);
                if (now >= soft) {
                    give_up(&b[i], "no answer before the others decided", 1);
                    continue;
                }
                if (soft < dl)
                    dl = soft;
            }
            if (dl < wake)
                wake = dl;
            pfd[k].fd = c->ctx->fd;
            pfd[k].events = redlock__conn_events(
                c, c->sent < c->out.len, b[i].pending > 0 || c->prefix.count > 0);
            pfd[k].revents = 0;
            if (redlock__tls_pending(c))
                ready = 1;
            idx[k++] = i;
        }
        if (k == 0)
            break;
        int rc = poll(pfd, (nfds_t)k,
                      ready ? 0 : (int)((wake - now + 999999) / 1000000));
        if (rc < 0 && errno != EINTR) {
            for (int j = 0; j < k; j++)
                batch_fail(&b[idx[j]], REDLOCK_IO, "poll failed");
            break;
        }
        for (int j = 0; j < k && (rc > 0 || ready); j++) {
            redlock__batch *bj = &b[idx[j]];
            short ev = pfd[j].revents;
            if (ev & POLLNVAL)
                batch_fail(bj, REDLOCK_IO, "socket invalid");
            else if (ev || redlock__tls_pending(bj->conn))
                step(bj, ev);
        }
    }
    note_outcomes(b, n);
    if (pfd != pfd_fixed) {
        free(pfd);
        free(idx);
    }
}
