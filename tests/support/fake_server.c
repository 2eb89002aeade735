/* A fake Redis answering with scripted bytes: see fake_server.h. */
#include "fake_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
/* A command larger than this closes the connection (libredlock's largest
 * are a test's 1 MiB key plus a script). */
#define MAX_COMMAND (64u << 20)
#define MAX_LOG 1024
#define LOG_ARG_MAX 256
#define MAX_SCRIPTS 16

/* ---- SHA1 (FIPS 180-1), for SCRIPT LOAD's answer and EVALSHA ---------- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

/* Lower-case hex SHA1 of data[0..len) into hex[41]. */
static void sha1_hex(const char *data, size_t len, char hex[41])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                     0xC3D2E1F0};
    const unsigned char *p = (const unsigned char *)data;
    size_t left = len;
    while (left >= 64) {
        sha1_block(h, p);
        p += 64;
        left -= 64;
    }
    unsigned char tail[128];
    memset(tail, 0, sizeof tail);
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tlen = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tlen == 128)
        sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++)
        snprintf(hex + 8 * i, 9, "%08x", h[i]);
}

/* ---- the server ------------------------------------------------------- */

typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

static int buf_add(buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static void buf_drop(buf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

typedef enum mode { M_SERVE, M_CLOSE, M_RESET, M_HANG, M_FLOOD } mode;

typedef struct conn {
    int fd;
    int number;
    buf in, out;
    mode mode;
    char *flood;
    size_t flood_len, flood_left, flood_pos;
    size_t pause_at;    /* > 0: stop sending when out.len is down to this */
    int64_t resume_ns;  /* > 0: paused until then */
} conn;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct log_entry {
    fs_kind kind;
    int argc;
    char **argv; /* copies, each cut at LOG_ARG_MAX */
    size_t *len;
} log_entry;

struct fs_server {
    int lfd;
    int port;
    char url[64];
    int wake[2];
    pthread_t thread;
    pthread_mutex_t mu;
    int stop;
    /* under mu */
    fs_handler handler;
    void *arg;
    conn *conns[MAX_CONNS];
    int nconns;
    int accepted;
    int commands;
    int counts[FS_NKINDS];
    log_entry log[MAX_LOG];
    int nlog;
    char *scripts[MAX_SCRIPTS]; /* bodies seen, by sha below */
    char shas[MAX_SCRIPTS][41];
    int nscripts;
    char scratch[512];
};

static const char *const kind_names[FS_NKINDS] = {
    "OTHER", "AUTH", "SELECT",  "PING",  "SCRIPT LOAD", "SET",
    "ACQUIRE SCRIPT", "RELEASE", "EXTEND", "INSPECT", "TYPE",
    "PTTL",  "WAIT",  "SUBSCRIBE", "UNSUBSCRIBE"};

const char *fs_kind_name(fs_kind k)
{
    return k >= 0 && k < FS_NKINDS ? kind_names[k] : "?";
}

static void conn_free(conn *c, int reset)
{
    if (reset) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->fd);
    free(c->in.data);
    free(c->out.data);
    free(c->flood);
    free(c);
}

static void close_all(fs_server *s)
{
    for (int i = 0; i < s->nconns; i++)
        conn_free(s->conns[i], 1); /* RST: no TIME_WAIT piles up */
    s->nconns = 0;
}

static void forget(fs_server *s)
{
    for (int i = 0; i < s->nlog; i++) {
        for (int a = 0; a < s->log[i].argc; a++)
            free(s->log[i].argv[a]);
        free(s->log[i].argv);
        free(s->log[i].len);
    }
    s->nlog = 0;
    for (int i = 0; i < s->nscripts; i++)
        free(s->scripts[i]);
    s->nscripts = 0;
    s->accepted = s->commands = 0;
    memset(s->counts, 0, sizeof s->counts);
}

static const char *remember_script(fs_server *s, const char *body, size_t len)
{
    char sha[41];
    sha1_hex(body, len, sha);
    for (int i = 0; i < s->nscripts; i++)
        if (strcmp(s->shas[i], sha) == 0)
            return s->scripts[i];
    if (s->nscripts == MAX_SCRIPTS)
        return NULL;
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, body, len);
    copy[len] = '\0';
    memcpy(s->shas[s->nscripts], sha, sizeof sha);
    s->scripts[s->nscripts] = copy;
    return s->scripts[s->nscripts++];
}

static const char *script_by_sha(fs_server *s, const char *sha)
{
    for (int i = 0; i < s->nscripts; i++)
        if (strcasecmp(s->shas[i], sha) == 0)
            return s->scripts[i];
    return NULL;
}

static int is(const fs_command *c, int i, const char *word)
{
    return c->argc > i && strcasecmp(c->argv[i], word) == 0;
}

/* Which of libredlock's scripts: by what its body does. */
static fs_kind script_kind(const char *body)
{
    if (!body)
        return FS_OTHER;
    if (strstr(body, "publish"))
        return FS_RELEASE;
    if (strstr(body, "'set'")) /* the acquire script also pexpires */
        return FS_ACQUIRE_SCRIPT;
    if (strstr(body, "pexpire"))
        return FS_EXTEND;
    if (strstr(body, "pttl"))
        return FS_INSPECT;
    return FS_OTHER;
}

static fs_kind classify(fs_server *s, fs_command *c)
{
    if (c->argc == 0)
        return FS_OTHER;
    if (is(c, 0, "AUTH"))
        return FS_AUTH;
    if (is(c, 0, "SELECT"))
        return FS_SELECT;
    if (is(c, 0, "PING"))
        return FS_PING;
    if (is(c, 0, "SCRIPT") && is(c, 1, "LOAD") && c->argc == 3) {
        remember_script(s, c->argv[2], c->argvlen[2]);
        return FS_SCRIPT_LOAD;
    }
    if (is(c, 0, "SET"))
        return FS_SET;
    if (is(c, 0, "EVAL") && c->argc >= 2) {
        c->script = remember_script(s, c->argv[1], c->argvlen[1]);
        return script_kind(c->script);
    }
    if (is(c, 0, "EVALSHA") && c->argc >= 2) {
        c->script = script_by_sha(s, c->argv[1]);
        return script_kind(c->script);
    }
    if (is(c, 0, "TYPE"))
        return FS_TYPE;
    if (is(c, 0, "PTTL"))
        return FS_PTTL;
    if (is(c, 0, "WAIT"))
        return FS_WAIT;
    if (is(c, 0, "SUBSCRIBE"))
        return FS_SUBSCRIBE;
    if (is(c, 0, "UNSUBSCRIBE"))
        return FS_UNSUBSCRIBE;
    return FS_OTHER;
}

void fs_default(fs_server *s, const fs_command *cmd, fs_reply *r)
{
    memset(r, 0, sizeof *r);
    r->action = FS_SEND;
    const char *d = "-ERR unknown command\r\n";
    char sha[41];
    /* Like Redis: a script it does not know (fs_set() forgets them). */
    if (cmd->kind == FS_OTHER && is(cmd, 0, "EVALSHA"))
        d = "-NOSCRIPT No matching script. Please use EVAL.\r\n";
    switch (cmd->kind) {
    case FS_AUTH:
    case FS_SELECT:
    case FS_SET:
        d = "+OK\r\n";
        break;
    case FS_PING:
        d = "+PONG\r\n";
        break;
    case FS_SCRIPT_LOAD:
        sha1_hex(cmd->argv[2], cmd->argvlen[2], sha);
        snprintf(s->scratch, sizeof s->scratch, "$40\r\n%s\r\n", sha);
        d = s->scratch;
        break;
    case FS_ACQUIRE_SCRIPT:
    case FS_RELEASE:
    case FS_EXTEND:
    case FS_WAIT:
        d = ":1\r\n";
        break;
    case FS_INSPECT:
        d = "*2\r\n$-1\r\n:-2\r\n";
        break;
    case FS_TYPE:
        d = "+none\r\n";
        break;
    case FS_PTTL:
        d = ":-2\r\n";
        break;
    case FS_SUBSCRIBE:
    case FS_UNSUBSCRIBE:
        if (cmd->argc >= 2 && cmd->argvlen[1] < 256) {
            int sub = cmd->kind == FS_SUBSCRIBE;
            snprintf(s->scratch, sizeof s->scratch,
                     "*3\r\n$%d\r\n%s\r\n$%zu\r\n%s\r\n:%d\r\n", sub ? 9 : 11,
                     sub ? "subscribe" : "unsubscribe", cmd->argvlen[1],
                     cmd->argv[1], sub ? 1 : 0);
            d = s->scratch;
        }
        break;
    default:
        break;
    }
    r->data = d;
    r->len = strlen(d);
}

static void log_command(fs_server *s, const fs_command *c)
{
    if (s->nlog == MAX_LOG)
        return;
    log_entry *e = &s->log[s->nlog];
    e->argv = calloc((size_t)c->argc, sizeof *e->argv);
    e->len = calloc((size_t)c->argc, sizeof *e->len);
    if (!e->argv || !e->len) {
        free(e->argv);
        free(e->len);
        return;
    }
    e->kind = c->kind;
    e->argc = 0;
    for (int i = 0; i < c->argc; i++) {
        size_t n = c->argvlen[i] < LOG_ARG_MAX ? c->argvlen[i] : LOG_ARG_MAX;
        if (!(e->argv[i] = malloc(n + 1)))
            break;
        memcpy(e->argv[i], c->argv[i], n);
        e->argv[i][n] = '\0';
        e->len[i] = n;
        e->argc++;
    }
    s->nlog++;
}

/* Parse "<prefix><number>\r\n" at p (within end).  Returns the position
 * after it, NULL when incomplete, or (char *)-1 when malformed. */
#define BAD ((const char *)-1)
static const char *header(const char *p, const char *end, char prefix,
                          long long *n)
{
    if (p >= end)
        return NULL;
    if (*p != prefix)
        return BAD;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return end - p > 32 ? BAD : NULL;
    if (nl - p < 3 || nl[-1] != '\r')
        return BAD;
    long long v = 0;
    for (const char *q = p + 1; q < nl - 1; q++) {
        if (*q < '0' || *q > '9' || v > (long long)MAX_COMMAND)
            return BAD;
        v = v * 10 + (*q - '0');
    }
    *n = v;
    return nl + 1;
}

/* One complete command from c->in: 1 parsed (argv malloc'd), 0 incomplete,
 * -1 malformed. */
static int parse_command(conn *c, fs_command *cmd, size_t *used)
{
    const char *p = c->in.data, *end = c->in.data + c->in.len;
    long long argc;
    p = header(p, end, '*', &argc);
    if (p == NULL || p == BAD)
        return p == BAD ? -1 : 0;
    if (argc < 1 || argc > 1024)
        return -1;
    /* First pass: complete? */
    const char *q = p;
    for (long long i = 0; i < argc; i++) {
        long long len;
        q = header(q, end, '$', &len);
        if (q == NULL || q == BAD)
            return q == BAD ? -1 : 0;
        if ((size_t)(end - q) < (size_t)len + 2)
            return 0;
        q += len + 2;
    }
    cmd->argc = (int)argc;
    cmd->argv = calloc((size_t)argc, sizeof *cmd->argv);
    cmd->argvlen = calloc((size_t)argc, sizeof *cmd->argvlen);
    if (!cmd->argv || !cmd->argvlen)
        return -1;
    q = p;
    for (long long i = 0; i < argc; i++) {
        long long len = 0;
        q = header(q, end, '$', &len);
        if (q == NULL || q == BAD) /* the first pass saw it whole */
            return -1;
        cmd->argv[i] = malloc((size_t)len + 1);
        if (!cmd->argv[i])
            return -1;
        memcpy(cmd->argv[i], q, (size_t)len);
        cmd->argv[i][len] = '\0';
        cmd->argvlen[i] = (size_t)len;
        q += len + 2;
    }
    *used = (size_t)(q - c->in.data);
    return 1;
}

static void free_command(fs_command *cmd)
{
    for (int i = 0; cmd->argv && i < cmd->argc; i++)
        free(cmd->argv[i]);
    free(cmd->argv);
    free(cmd->argvlen);
}

/* Answer every complete command in c->in.  -1: close the connection. */
static int serve(fs_server *s, conn *c)
{
    while (c->mode == M_SERVE) {
        fs_command cmd;
        size_t used = 0;
        memset(&cmd, 0, sizeof cmd);
        int rc = parse_command(c, &cmd, &used);
        if (rc <= 0) {
            free_command(&cmd);
            if (rc < 0 || c->in.len > MAX_COMMAND)
                return -1;
            return 0;
        }
        buf_drop(&c->in, used);
        cmd.conn = c->number;
        cmd.index = s->commands++;
        cmd.kind = classify(s, &cmd);
        cmd.nth = s->counts[cmd.kind]++;
        log_command(s, &cmd);
        fs_reply r;
        fs_default(s, &cmd, &r);
        if (s->handler)
            s->handler(s->arg, &cmd, &r);
        /* A split reply: pause when what is left to send is its tail
         * (and whatever is queued after it). */
        if (r.split > 0 && r.split < r.len && c->pause_at == 0 &&
            c->resume_ns == 0)
            c->pause_at = r.len - r.split;
        else if (c->pause_at > 0)
            c->pause_at += r.len;
        int ok = buf_add(&c->out, r.data, r.len) == 0;
        switch (r.action) {
        case FS_SEND:
            break;
        case FS_CLOSE:
            c->mode = M_CLOSE;
            break;
        case FS_RESET:
            c->mode = M_RESET;
            break;
        case FS_HANG:
            c->mode = M_HANG;
            break;
        case FS_FLOOD:
            c->mode = M_HANG;
            /* The pattern repeated to about 64 KiB, so that each send()
             * moves a lot: a flood as fast as loopback goes. */
            size_t reps = r.flood_len ? (65536 + r.flood_len - 1) / r.flood_len
                                      : 0;
            if (r.flood && r.flood_len > 0 && r.flood_limit > 0 &&
                (c->flood = malloc(reps * r.flood_len))) {
                for (size_t i = 0; i < reps; i++)
                    memcpy(c->flood + i * r.flood_len, r.flood, r.flood_len);
                c->flood_len = reps * r.flood_len;
                c->flood_left = r.flood_limit;
                c->flood_pos = 0;
                c->mode = M_FLOOD;
            }
            break;
        }
        free_command(&cmd);
        if (!ok)
            return -1;
    }
    if (c->mode == M_HANG || c->mode == M_FLOOD)
        c->in.len = 0; /* read and dropped */
    return 0;
}

/* Write what the socket takes.  -1: close the connection. */
static int write_some(conn *c)
{
    for (;;) {
        const char *p;
        size_t n;
        if (c->resume_ns > 0) {
            if (now_ns() < c->resume_ns)
                return 0;
            c->resume_ns = 0;
        }
        if (c->out.len > 0) {
            p = c->out.data;
            n = c->out.len;
            if (c->pause_at > 0) {
                if (c->out.len <= c->pause_at) {
                    c->pause_at = 0;
                    c->resume_ns =
                        now_ns() + (int64_t)FS_SPLIT_PAUSE_MS * 1000000;
                    return 0;
                }
                n = c->out.len - c->pause_at;
            }
        } else if (c->mode == M_FLOOD && c->flood_left > 0) {
            p = c->flood + c->flood_pos;
            n = c->flood_len - c->flood_pos;
            if (n > c->flood_left)
                n = c->flood_left;
        } else {
            return 0;
        }
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w <= 0)
            return -1;
        if (c->out.len > 0) {
            buf_drop(&c->out, (size_t)w);
        } else {
            c->flood_pos = (c->flood_pos + (size_t)w) % c->flood_len;
            c->flood_left -= (size_t)w;
            if (c->flood_left == 0)
                c->mode = M_HANG;
        }
    }
}

static int wants_write(const conn *c)
{
    if (c->resume_ns > 0)
        return 0; /* paused: the poll timeout wakes us */
    return c->out.len > 0 || (c->mode == M_FLOOD && c->flood_left > 0);
}

static void drop_conn(fs_server *s, int i, int reset)
{
    conn_free(s->conns[i], reset);
    s->conns[i] = s->conns[--s->nconns];
}

static void accept_one(fs_server *s)
{
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return;
    if (s->nconns == MAX_CONNS) {
        close(fd);
        return;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->number = s->accepted++;
    c->mode = M_SERVE;
    s->conns[s->nconns++] = c;
}

/* What poll() reported; called with s->mu held. */
static void handle_events(fs_server *s, struct pollfd *pfd, conn **who, int k)
{
    if (pfd[0].revents) {
        char b[64];
        while (read(s->wake[0], b, sizeof b) > 0) {
        }
        return; /* connections may have changed under us */
    }
    if (pfd[1].revents & POLLIN)
        accept_one(s);
    for (int j = 2; j < k; j++) {
        conn *c = who[j];
        int i;
        for (i = 0; i < s->nconns && s->conns[i] != c; i++) {
        }
        if (i == s->nconns || !pfd[j].revents)
            continue;
        int dead = 0;
        if (pfd[j].revents & (POLLIN | POLLHUP | POLLERR)) {
            char b[16384];
            ssize_t n = recv(c->fd, b, sizeof b, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN &&
                           errno != EWOULDBLOCK && errno != EINTR))
                dead = 1;
            else if (n > 0 && (c->mode == M_HANG || c->mode == M_FLOOD))
                ; /* dropped */
            else if (n > 0 && (buf_add(&c->in, b, (size_t)n) != 0 ||
                               serve(s, c) != 0))
                dead = 1;
        }
        if (!dead && write_some(c) != 0)
            dead = 1;
        if (!dead && !wants_write(c) && c->resume_ns == 0 &&
            (c->mode == M_CLOSE || c->mode == M_RESET)) {
            drop_conn(s, i, c->mode == M_RESET);
            continue;
        }
        /* RST rather than FIN: a client that closed first then never
         * sits in TIME_WAIT (thousands of connections a minute under the
         * fuzzer would run out of ephemeral ports). */
        if (dead)
            drop_conn(s, i, 1);
    }
}

static void *server_main(void *arg)
{
    fs_server *s = arg;
    struct pollfd pfd[MAX_CONNS + 2];
    conn *who[MAX_CONNS + 2];

    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        int k = 0;
        pfd[k] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
        who[k++] = NULL;
        pfd[k] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        who[k++] = NULL;
        int timeout = 1000;
        for (int i = 0; i < s->nconns; i++) {
            conn *c = s->conns[i];
            if (c->resume_ns > 0) {
                int64_t ms = (c->resume_ns - now_ns() + 999999) / 1000000;
                if (ms < timeout)
                    timeout = ms < 0 ? 0 : (int)ms;
            }
            pfd[k] = (struct pollfd){
                .fd = c->fd,
                .events = (short)(POLLIN | (wants_write(c) ? POLLOUT : 0))};
            who[k++] = c;
        }
        pthread_mutex_unlock(&s->mu);
        int rc = poll(pfd, (nfds_t)k, timeout);
        pthread_mutex_lock(&s->mu);
        if (rc > 0)
            handle_events(s, pfd, who, k);
        /* Paused connections whose pause is over. */
        for (int i = 0; i < s->nconns; i++) {
            conn *c = s->conns[i];
            if (c->resume_ns == 0 || now_ns() < c->resume_ns)
                continue;
            if (write_some(c) != 0) {
                drop_conn(s, i--, 0);
            } else if (!wants_write(c) && c->resume_ns == 0 &&
                       (c->mode == M_CLOSE || c->mode == M_RESET)) {
                drop_conn(s, i--, c->mode == M_RESET);
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void kick(fs_server *s)
{
    char one = 1;
    ssize_t w = write(s->wake[1], &one, 1);
    (void)w;
}

fs_server *fs_start(void)
{
    fs_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t alen = sizeof a;
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->lfd, 64) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen) != 0 ||
        pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "fake_server: cannot listen: %s\n", strerror(errno));
        if (s->lfd >= 0)
            close(s->lfd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d", s->port);
    pthread_mutex_init(&s->mu, NULL);
    if (pthread_create(&s->thread, NULL, server_main, s) != 0) {
        fprintf(stderr, "fake_server: cannot start its thread\n");
        close(s->lfd);
        close(s->wake[0]);
        close(s->wake[1]);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

void fs_set(fs_server *s, fs_handler handler, void *arg)
{
    pthread_mutex_lock(&s->mu);
    close_all(s);
    forget(s);
    s->handler = handler;
    s->arg = arg;
    pthread_mutex_unlock(&s->mu);
    kick(s);
}

void fs_stop(fs_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_mutex_unlock(&s->mu);
    kick(s);
    pthread_join(s->thread, NULL);
    close_all(s);
    forget(s);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int fs_port(const fs_server *s) { return s->port; }

const char *fs_url(const fs_server *s) { return s->url; }

int fs_count(fs_server *s, fs_kind kind)
{
    pthread_mutex_lock(&s->mu);
    int n = kind == FS_NKINDS ? s->commands
                              : (kind >= 0 && kind < FS_NKINDS ? s->counts[kind]
                                                               : 0);
    pthread_mutex_unlock(&s->mu);
    return n;
}

int fs_connections(fs_server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->accepted;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int fs_saw_arg(fs_server *s, fs_kind kind, const char *arg)
{
    int found = 0;
    size_t n = strlen(arg);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nlog && !found; i++) {
        if (s->log[i].kind != kind)
            continue;
        for (int a = 0; a < s->log[i].argc && !found; a++)
            found = s->log[i].len[a] == n && memcmp(s->log[i].argv[a], arg, n) == 0;
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}
