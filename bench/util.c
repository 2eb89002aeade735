/* redlock-bench: clocks, samples, process figures, affinity, raw hiredis. */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* ---- time ------------------------------------------------------------------ */

int64_t bn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bn_sleep_until_ns(int64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

void bn_sleep_ns(int64_t ns)
{
    if (ns > 0)
        bn_sleep_until_ns(bn_now_ns() + ns);
}

/* ---- samples --------------------------------------------------------------- */

int bn_samples_push(bn_samples *s, int64_t x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        int64_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    s->sorted = 0;
    return 0;
}

int bn_samples_append(bn_samples *dst, const bn_samples *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (bn_samples_push(dst, src->v[i]) != 0)
            return -1;
    return 0;
}

void bn_samples_free(bn_samples *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t bn_percentile(bn_samples *s, double p)
{
    if (s->n == 0)
        return 0;
    if (!s->sorted) {
        qsort(s->v, s->n, sizeof *s->v, cmp_i64);
        s->sorted = 1;
    }
    /* nearest rank: the smallest value with at least p % of samples <= it */
    double rank = p / 100.0 * (double)s->n;
    size_t k = (size_t)rank;
    if ((double)k < rank)
        k++;
    if (k < 1)
        k = 1;
    if (k > s->n)
        k = s->n;
    return s->v[k - 1];
}

int64_t bn_max(const bn_samples *s)
{
    int64_t m = 0;
    for (size_t i = 0; i < s->n; i++)
        if (i == 0 || s->v[i] > m)
            m = s->v[i];
    return m;
}

/* ---- process figures ---------------------------------------------------------- */

long bn_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

long long bn_heap_in_use(void)
{
#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 33)
    struct mallinfo2 mi = mallinfo2();
    return (long long)mi.uordblks + (long long)mi.hblkhd;
#else
    return -1;
#endif
#else
    return -1;
#endif
}

void bn_heap_trim(void)
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

void bn_loadavg(char *buf, size_t len)
{
    snprintf(buf, len, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL)
        return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

static double ru_seconds(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

double bn_cpu_process_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ru_seconds(&ru);
}

double bn_cpu_thread_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return 0;
    return ru_seconds(&ru);
}

/* ---- CPU affinity ------------------------------------------------------------ */

static cpu_set_t start_set;
static int start_set_ok;

void bn_affinity_init(void)
{
    CPU_ZERO(&start_set);
    start_set_ok = sched_getaffinity(0, sizeof start_set, &start_set) == 0;
}

int bn_cpus_allowed(int *first, int *second)
{
    int n = 0;
    if (first)
        *first = -1;
    if (second)
        *second = -1;
    if (!start_set_ok)
        return 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &start_set))
            continue;
        if (n == 0 && first)
            *first = cpu;
        if (n == 1 && second)
            *second = cpu;
        n++;
    }
    return n;
}

int bn_cpu_allowed(int cpu)
{
    return start_set_ok && cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &start_set);
}

int bn_pin_self(int cpu)
{
    if (cpu < 0) {
        if (!start_set_ok)
            return 0;
        return sched_setaffinity(0, sizeof start_set, &start_set) == 0 ? 0 : -1;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        fprintf(stderr, "redlock-bench: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- URLs and raw hiredis connections ------------------------------------------ */

static int copy_span(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int parse_db(const char *s, int *db)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 1000000)
        return -1;
    *db = (int)v;
    return 0;
}

/* [user][:password]@ at the start of rest (before `limit`); advances rest. */
static int parse_userinfo(const char **rest, const char *limit, bn_url *u)
{
    const char *at = NULL;
    for (const char *p = *rest; p < limit; p++)
        if (*p == '@')
            at = p;
    if (at == NULL)
        return 0;
    const char *colon = memchr(*rest, ':', (size_t)(at - *rest));
    if (colon != NULL) {
        if (copy_span(u->user, sizeof u->user, *rest, (size_t)(colon - *rest)) != 0 ||
            copy_span(u->password, sizeof u->password, colon + 1,
                      (size_t)(at - colon - 1)) != 0)
            return -1;
    } else if (copy_span(u->user, sizeof u->user, *rest, (size_t)(at - *rest)) != 0) {
        return -1;
    }
    *rest = at + 1;
    return 0;
}

int bn_url_parse(const char *url, bn_url *u)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        u->is_unix = 1;
        const char *rest = url + 7;
        const char *q = strchr(rest, '?');
        const char *end = q ? q : rest + strlen(rest);
        if (parse_userinfo(&rest, end, u) != 0)
            return -1;
        if (copy_span(u->path, sizeof u->path, rest, (size_t)(end - rest)) != 0 ||
            u->path[0] != '/')
            return -1;
        if (q != NULL) {
            if (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &u->db) != 0)
                return -1;
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *rest = url + 8;
    const char *slash = strchr(rest, '/');
    const char *end = slash ? slash : rest + strlen(rest);
    if (parse_userinfo(&rest, end, u) != 0)
        return -1;
    const char *hend;
    const char *after;
    if (*rest == '[') {
        hend = memchr(rest, ']', (size_t)(end - rest));
        if (hend == NULL)
            return -1;
        if (copy_span(u->host, sizeof u->host, rest + 1, (size_t)(hend - rest - 1)) != 0)
            return -1;
        after = hend + 1;
    } else {
        hend = memchr(rest, ':', (size_t)(end - rest));
        if (hend == NULL)
            hend = end;
        if (copy_span(u->host, sizeof u->host, rest, (size_t)(hend - rest)) != 0)
            return -1;
        after = hend;
    }
    if (u->host[0] == '\0')
        return -1;
    if (after < end && *after == ':') {
        char port[8];
        if (copy_span(port, sizeof port, after + 1, (size_t)(end - after - 1)) != 0)
            return -1;
        char *pe;
        long p = strtol(port, &pe, 10);
        if (pe == port || *pe != '\0' || p < 1 || p > 65535)
            return -1;
        u->port = (int)p;
    } else if (after != end) {
        return -1;
    }
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &u->db) != 0)
        return -1;
    return 0;
}

static int reply_ok(redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
}

redisContext *bn_url_connect(const bn_url *u, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = u->is_unix ? redisConnectUnixWithTimeout(u->path, tv)
                                 : redisConnectWithTimeout(u->host, u->port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "redlock-bench: connect %s:%d: %s\n",
                u->is_unix ? u->path : u->host, u->port,
                c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (u->password[0] != '\0') {
        if (u->user[0] != '\0')
            r = redisCommand(c, "AUTH %s %s", u->user, u->password);
        else
            r = redisCommand(c, "AUTH %s", u->password);
        if (!reply_ok(r)) {
            fprintf(stderr, "redlock-bench: AUTH refused by %s:%d\n", u->host, u->port);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (u->db != 0) {
        r = redisCommand(c, "SELECT %d", u->db);
        if (!reply_ok(r)) {
            fprintf(stderr, "redlock-bench: SELECT %d refused\n", u->db);
            goto fail;
        }
        freeReplyObject(r);
    }
    return c;
fail:
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return NULL;
}

int bn_script_load(redisContext *c, const char *text, const char *sha)
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", text);
    int ok = r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, sha) == 0;
    if (!ok)
        fprintf(stderr, "redlock-bench: SCRIPT LOAD answered %s (expected %s)\n",
                r == NULL ? c->errstr : r->type == REDIS_REPLY_STRING ? r->str : "?",
                sha);
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

double bn_info_number(redisContext *c, const char *section, const char *field)
{
    redisReply *r = redisCommand(c, "INFO %s", section);
    double v = -1;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        /* field "name:sub" looks up "sub=" inside the line "name:..." */
        char name[128], sub[64] = "";
        const char *colon = strchr(field, ':');
        if (colon != NULL) {
            snprintf(name, sizeof name, "%.*s:", (int)(colon - field), field);
            snprintf(sub, sizeof sub, "%s=", colon + 1);
        } else {
            snprintf(name, sizeof name, "%s:", field);
        }
        const char *line = r->str;
        while (line != NULL && *line != '\0') {
            if (strncmp(line, name, strlen(name)) == 0) {
                const char *p = line + strlen(name);
                if (sub[0] != '\0') {
                    const char *eol = strpbrk(p, "\r\n");
                    const char *q = strstr(p, sub);
                    if (q != NULL && (eol == NULL || q < eol))
                        v = strtod(q + strlen(sub), NULL);
                } else {
                    v = strtod(p, NULL);
                }
                break;
            }
            line = strchr(line, '\n');
            if (line)
                line++;
        }
    }
    if (r)
        freeReplyObject(r);
    return v;
}
