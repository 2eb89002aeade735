/*
 * redlock list: the locks held now, one line each, sorted by key:
 *
 *       TTL  HOST  PID  SINCE                 KEY
 *   29500ms  web1  4242 2026-11-25T10:00:00Z  report:nightly
 *
 * Columns are aligned (every row is read before the first is printed) and
 * separated by spaces, KEY last because it is the only one that may hold
 * spaces (as ps puts COMMAND last): `read -r ttl host pid since key` takes
 * a line apart.  "-" for what the holder did not record.  The header line
 * only on a terminal, or with --header.  Control characters and
 * backslashes of a key (and spaces of a host) are escaped as redis-cli
 * does, so that a line is always one lock.
 *
 * Also here: who took a lock, from its token (for status).
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_holder_of(const char *token, char *host, size_t hostlen, long *pid,
                  int64_t *since_ms)
{
    /* "<uuid>;host=H;pid=P;since=MS", the whole of it (as the library
     * reads it for redlock_list()) */
    size_t len = strlen(token);
    if (len <= 36 || hostlen < 2 || token[8] != '-' || token[13] != '-')
        return -1;
    char fmt[64];
    long long s = 0;
    int used = 0;
    snprintf(fmt, sizeof fmt, ";host=%%%zu[^;];pid=%%ld;since=%%lld%%n", hostlen - 1);
    if (sscanf(token + 36, fmt, host, pid, &s, &used) != 3 ||
        (size_t)used != len - 36)
        return -1;
    *since_ms = s;
    return 0;
}

void cli_iso_utc(int64_t since_ms, char *buf, size_t len)
{
    time_t t = (time_t)(since_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%" PRId64, since_ms);
}

typedef struct row {
    char *key;   /* escaped */
    char ttl[32];
    char *host;  /* escaped, or "-" */
    char pid[24];
    char since[32];
} row;

typedef struct rows {
    row *v;
    size_t n, cap;
    int nomem;
} rows;

/* s with backslashes and control characters (and spaces if space) written
 * as \\, \n, \r, \t, \a, \b or \xHH, as redis-cli quotes a string.
 * malloc'd; NULL when out of memory. */
static char *escape(const char *s, int space)
{
    size_t n = strlen(s);
    char *out = malloc(4 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *e = NULL;
        switch (*p) {
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        case '\a': e = "\\a"; break;
        case '\b': e = "\\b"; break;
        default: break;
        }
        if (e) {
            memcpy(o, e, 2);
            o += 2;
        } else if (*p < 0x20 || *p == 0x7f || (space && *p == ' ')) {
            snprintf(o, 5, "\\x%02x", *p);
            o += 4;
        } else {
            *o++ = (char)*p;
        }
    }
    *o = '\0';
    return out;
}

static int add_row(const redlock_holder *h, void *arg)
{
    rows *rs = arg;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 64;
        row *v = realloc(rs->v, cap * sizeof *v);
        if (!v) {
            rs->nomem = 1;
            return 1;
        }
        rs->v = v;
        rs->cap = cap;
    }
    row *r = &rs->v[rs->n];
    memset(r, 0, sizeof *r);
    r->key = escape(h->key, 0);
    r->host = h->host ? escape(h->host, 1) : strdup("-");
    if (!r->key || !r->host) {
        free(r->key);
        free(r->host);
        rs->nomem = 1;
        return 1;
    }
    if (h->pttl_ms < 0)
        snprintf(r->ttl, sizeof r->ttl, "forever");
    else
        snprintf(r->ttl, sizeof r->ttl, "%" PRId64 "ms", h->pttl_ms);
    if (h->pid > 0)
        snprintf(r->pid, sizeof r->pid, "%ld", h->pid);
    else
        snprintf(r->pid, sizeof r->pid, "-");
    if (h->since_ms > 0)
        cli_iso_utc(h->since_ms, r->since, sizeof r->since);
    else
        snprintf(r->since, sizeof r->since, "-");
    rs->n++;
    return 0;
}

static int by_key(const void *x, const void *y)
{
    return strcmp(((const row *)x)->key, ((const row *)y)->key);
}

static void widen(int *w, const char *s)
{
    int n = (int)strlen(s);
    if (n > *w)
        *w = n;
}

int cli_list(const cli_args *a, redlock_client *c)
{
    const char *pattern = a->npos > 0 ? a->pos[0] : NULL;
    rows rs;
    memset(&rs, 0, sizeof rs);
    redlock_status st =
        redlock_list(c, pattern, a->list_all ? REDLOCK_LIST_ALL : 0, add_row, &rs);
    int rc = XS_OK;
    if (rs.nomem) {
        cli_err("list: out of memory");
        rc = XS_OSERR;
    } else if (st != REDLOCK_OK) {
        char what[256];
        if (pattern && *pattern)
            snprintf(what, sizeof what, "list: cannot list the locks \"%.200s\"", pattern);
        else
            snprintf(what, sizeof what, "list: cannot list the locks");
        cli_err_status(what, st);
        rc = cli_exit_code(st, XS_BUSY);
    } else {
        if (rs.n > 1)
            qsort(rs.v, rs.n, sizeof *rs.v, by_key);
        int header = a->header >= 0 ? a->header : isatty(STDOUT_FILENO);
        int wt = 0, wh = 0, wp = 0, ws = 0;
        if (header) {
            wt = 3;  /* TTL */
            wh = 4;  /* HOST */
            wp = 3;  /* PID */
            ws = 5;  /* SINCE */
        }
        for (size_t i = 0; i < rs.n; i++) {
            widen(&wt, rs.v[i].ttl);
            widen(&wh, rs.v[i].host);
            widen(&wp, rs.v[i].pid);
            widen(&ws, rs.v[i].since);
        }
        /* Numbers to the right, as ps does; KEY last, not padded. */
        if (header)
            printf("%*s  %-*s  %*s  %-*s  %s\n", wt, "TTL", wh, "HOST", wp, "PID", ws,
                   "SINCE", "KEY");
        for (size_t i = 0; i < rs.n; i++)
            printf("%*s  %-*s  %*s  %-*s  %s\n", wt, rs.v[i].ttl, wh, rs.v[i].host, wp,
                   rs.v[i].pid, ws, rs.v[i].since, rs.v[i].key);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            cli_err("list: cannot write the list: %s", strerror(errno));
            rc = XS_IOERR;
        }
        cli_note("%zu lock%s held%s%s%s", rs.n, rs.n == 1 ? "" : "s",
                 pattern && *pattern ? " matching \"" : "",
                 pattern && *pattern ? pattern : "", pattern && *pattern ? "\"" : "");
    }
    for (size_t i = 0; i < rs.n; i++) {
        free(rs.v[i].key);
        free(rs.v[i].host);
    }
    free(rs.v);
    return rc;
}
