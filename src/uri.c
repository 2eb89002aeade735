/*
 * Node URLs:
 *
 *     redis://[[user][:password]@]host[:port][/db]     host may be [v6]
 *     unix://[[user][:password]@]/absolute/path[?db=N]
 *     redis+sentinel://[[user][:password]@]host[:port][,host[:port]...]
 *         /master_name[/db][?sentinel_user=U&sentinel_password=P]
 *     redis+cluster://[[user][:password]@]host[:port][,host[:port]...][/[0]]
 *     rediss://, rediss+sentinel://, rediss+cluster://: the same, marked
 *         for TLS
 *
 * Pure: no I/O and no state.  A failure leaves a message through
 * redlock__fail() that quotes the URL with its password masked and names
 * the part that is wrong; every byte of URL text in a message goes through
 * show(), so no message can carry a password (see secret_range()).
 *
 * How the parts are found (kept simple so that the rules fit in a
 * sentence each):
 *  - The scheme is whatever precedes the first "://", compared without
 *    regard to case.
 *  - redis://  the userinfo is everything before the LAST '@' after "//",
 *    so a password may contain '/', ':', '?' and even '@' unescaped (no
 *    '@' can occur in host, port or db).  The host part runs from after
 *    that '@' to the first '/' or '?'.
 *  - unix://   the path begins at the first '/' after "//".  Whatever
 *    precedes it must be empty or end in '@', and everything before its
 *    last '@' is the userinfo; a '/' in a unix:// user or password must
 *    therefore be written %2F.  The path runs to the first '?'.
 *  - redis+sentinel:// as redis://, with comma-separated sentinel
 *    addresses (default port 26379), then the master's name (percent-
 *    decoded, printable ASCII without spaces), then the db; a '@' in the
 *    query must be written %40, since the userinfo ends at the last '@'.
 *  - redis+cluster:// as redis://, with comma-separated seed addresses
 *    (default port 6379) and no db but 0.
 *  - The userinfo splits at its first ':' into user and password, and both
 *    are percent-decoded.  An empty user is absent (NULL); a password is
 *    present, possibly "", whenever the ':' is.
 */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#define DEFAULT_PORT 6379
#define DEFAULT_SENTINEL_PORT 26379

/* sun_path holds the terminating NUL too, so a path must be shorter. */
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

/* Room for the masked URL in a message; redlock__fail() keeps 512 bytes
 * in all, and the detail after the URL matters more than the URL's end. */
#define SHOWN_SIZE 160
/* Room for one quoted piece (a port, a host...) in a message. */
#define PIECE_SIZE 48

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    c = to_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Control bytes would garble a terminal or a log line when the message is
 * printed; show them as '?'. */
static char shown_char(char c)
{
    unsigned char u = (unsigned char)c;
    return u < 0x20 || u == 0x7f ? '?' : c;
}

/* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). */
static int is_scheme(const char *s, size_t n)
{
    if (n == 0 || !is_alpha(s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '+' &&
            s[i] != '-' && s[i] != '.')
            return 0;
    return 1;
}

/* s[0..n) equals the lower-case name, ignoring the case of s. */
static int same_word(const char *s, size_t n, const char *name)
{
    if (strlen(name) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (to_lower(s[i]) != name[i])
            return 0;
    return 1;
}

/*
 * The parts of url that no message may show: the password, the value of
 * every query parameter but db (a Sentinel URL's sentinel_password, or a
 * misspelling of it), and whatever follows "password=" anywhere.  They must be found for any
 * input, even one the parser gives up on at the first character, so this
 * does not rely on the parser: the password runs from after the first ':'
 * that follows the scheme's "//" (the start, when there is no well-formed
 * scheme) to the last '@' of the whole string; a value from after its
 * '=' (or "password=", any case) to the next '&'.  That covers the parser's
 * secrets and sometimes more, which costs legibility only.  Returns how
 * many ranges; from[i] == to[i] for an empty one.
 */
#define MAX_SECRETS 8
static int secret_ranges(const char *url, const char **from, const char **to)
{
    const char *sep = strstr(url, "://");
    const char *start =
        sep && is_scheme(url, (size_t)(sep - url)) ? sep + 3 : url;
    const char *at = strrchr(start, '@');
    const char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
    int n = 0;

    if (colon) {
        from[n] = colon + 1;
        to[n++] = at;
    }
    /* Every query value but a db's: a misspelt sentinel_password too.
     * Only after the userinfo: a password may hold "&x=" itself, and
     * what is masked must not depend on its letters. */
    const char *tail = at ? at + 1 : start;
    for (const char *p = tail; *p && n < MAX_SECRETS; p++) {
        if (*p != '?' && *p != '&')
            continue;
        size_t k = strcspn(p + 1, "=&");
        if (p[1 + k] != '=' ||
            (k == 2 && to_lower(p[1]) == 'd' && to_lower(p[2]) == 'b'))
            continue;
        from[n] = p + 2 + k;
        to[n] = from[n] + strcspn(from[n], "&");
        p = to[n++] - 1;
    }
    for (const char *p = tail; *p && n < MAX_SECRETS; p++) {
        static const char word[] = "password=";
        size_t k = 0;
        while (word[k] && to_lower(p[k]) == word[k])
            k++;
        if (word[k])
            continue;
        from[n] = p + k;
        to[n] = from[n] + strcspn(from[n], "&");
        p = to[n++] - 1;
    }
    return n;
}

/*
 * Copy s[0..n), which points into url, to dst[0..size) as a message may
 * show it: any byte of a secret range as one "***", control bytes as '?',
 * and "..." when cut.  Every quoted piece of a URL goes through here, so
 * that no message can show a password whatever part it quotes.
 */
static void show(char *dst, size_t size, const char *url, const char *s,
                 size_t n)
{
    const char *from[MAX_SECRETS], *to[MAX_SECRETS];
    int masked[MAX_SECRETS] = {0};
    size_t o = 0;

    int nsec = secret_ranges(url, from, to);
    for (const char *p = s; p < s + n; p++) {
        const char *add = NULL;
        size_t len;
        char c;
        for (int i = 0; i < nsec && !add; i++)
            if (!masked[i] && p >= from[i] && (p < to[i] || p == from[i])) {
                add = "***";
                len = 3;
                masked[i] = 1;
                if (to[i] > from[i])
                    p = to[i] - 1; /* resume after the range */
                else
                    p--; /* empty: show what is there next */
            }
        if (!add) {
            c = shown_char(*p);
            add = &c;
            len = 1;
        }
        /* Keep room for "..." and the NUL; "***" goes in whole or not at
         * all, so a cut cannot split it. */
        if (o + len > size - 4) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(dst + o, add, len);
        o += len;
    }
    dst[o] = '\0';
}

/* One part of url (a port, a host...) to quote in a message. */
static const char *piece(char dst[PIECE_SIZE], const char *url,
                         const char *s, size_t n)
{
    show(dst, PIECE_SIZE, url, s, n);
    return dst;
}

static redlock_status bad(const char *url, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* REDLOCK_INVALID with `invalid URL "<masked url>": <detail>`. */
static redlock_status bad(const char *url, const char *fmt, ...)
{
    char shown[SHOWN_SIZE];
    char detail[256];
    va_list ap;

    show(shown, sizeof shown, url, url, strlen(url));
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return redlock__fail(REDLOCK_INVALID, "invalid URL \"%s\": %s", shown,
                         detail);
}

static redlock_status no_memory(void)
{
    return redlock__fail(REDLOCK_NOMEM, "out of memory while parsing a URL");
}

static char *copy_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* A freed password should not linger in the heap for a core dump or a
 * later allocation to reveal; volatile keeps the stores from being
 * optimized away. */
static void wipe(char *s, size_t n)
{
    volatile char *p = s;
    for (size_t i = 0; i < n; i++)
        p[i] = '\0';
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    wipe(s, strlen(s));
    free(s);
}

enum { NUM_OK = 0, NUM_NOT_A_NUMBER = -1, NUM_TOO_LARGE = -2 };

/* Decimal digits only: no sign, space or base prefix, which strtol would
 * accept.  All digits are checked before the value so that "99999x" is
 * reported as not a number rather than as too large. */
static int parse_decimal(const char *s, size_t n, long max, long *value)
{
    long v = 0;

    if (n == 0)
        return NUM_NOT_A_NUMBER;
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return NUM_NOT_A_NUMBER;
    for (size_t i = 0; i < n; i++) {
        int d = s[i] - '0';
        if (v > (max - d) / 10)
            return NUM_TOO_LARGE;
        v = v * 10 + d;
    }
    *value = v;
    return NUM_OK;
}

static redlock_status parse_port(const char *url, const char *s, size_t n,
                                 int *port)
{
    char q[PIECE_SIZE];
    long v = 0;

    if (n == 0)
        return bad(url, "the port is empty after \":\"");
    int rc = parse_decimal(s, n, 65535, &v);
    if (rc == NUM_NOT_A_NUMBER)
        return bad(url, "port \"%s\" is not a number (expected 1..65535)",
                   piece(q, url, s, n));
    if (rc == NUM_TOO_LARGE || v == 0)
        return bad(url, "port \"%s\" is outside 1..65535",
                   piece(q, url, s, n));
    *port = (int)v;
    return REDLOCK_OK;
}

static redlock_status parse_db(const char *url, const char *s, size_t n,
                               int *db)
{
    char q[PIECE_SIZE];
    long v = 0;

    int rc = parse_decimal(s, n, INT_MAX, &v);
    if (rc == NUM_NOT_A_NUMBER)
        return bad(url, "db \"%s\" is not a number (expected 0..%d)",
                   piece(q, url, s, n), INT_MAX);
    if (rc == NUM_TOO_LARGE)
        return bad(url, "db \"%s\" is outside 0..%d",
                   piece(q, url, s, n), INT_MAX);
    *db = (int)v;
    return REDLOCK_OK;
}

enum { DECODE_OK = 0, DECODE_MALFORMED = -1, DECODE_NUL = -2,
       DECODE_NOMEM = -3 };

/* Percent-decode s[0..n) into a new string.  A NUL byte is refused: the
 * result is a C string, and a credential cut short at it would be a
 * different credential. */
static int decode(const char *s, size_t n, char **out)
{
    char *d = malloc(n + 1);
    size_t o = 0;

    if (!d)
        return DECODE_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 1 < n ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
            int rc = DECODE_OK;
            if (hi < 0 || lo < 0)
                rc = DECODE_MALFORMED;
            else if (hi == 0 && lo == 0)
                rc = DECODE_NUL;
            if (rc != DECODE_OK) {
                /* d holds o bytes of the secret and no NUL yet */
                wipe(d, o);
                free(d);
                return rc;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        d[o++] = c;
    }
    d[o] = '\0';
    *out = d;
    return DECODE_OK;
}

/* what is "user" or "password"; the message never shows its text. */
static redlock_status decode_part(const char *url, const char *what,
                                  const char *s, size_t n, char **out)
{
    switch (decode(s, n, out)) {
    case DECODE_MALFORMED:
        return bad(url,
                   "the %s has a malformed percent escape (expected %%XX, "
                   "two hex digits)",
                   what);
    case DECODE_NUL:
        return bad(url, "the %s decodes to a NUL byte (%%00)", what);
    case DECODE_NOMEM:
        return no_memory();
    default:
        return REDLOCK_OK;
    }
}

static redlock_status parse_userinfo(const char *url, const char *s, size_t n,
                                     redlock__url *u)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;

    if (ulen > 0) {
        redlock_status st = decode_part(url, "user", s, ulen, &u->user);
        if (st != REDLOCK_OK)
            return st;
    }
    if (colon)
        return decode_part(url, "password", colon + 1, n - ulen - 1,
                           &u->password);
    return REDLOCK_OK;
}

/* Names the parameter that q (just after '?' or '&') begins with. */
static redlock_status bad_parameter(const char *url, const char *q,
                                    const char *hint)
{
    char name[PIECE_SIZE];
    size_t n = strcspn(q, "=&");

    if (n == 0)
        return bad(url, "a query parameter has no name (%s)", hint);
    return bad(url, "unknown query parameter \"%s\" (%s)",
               piece(name, url, q, n), hint);
}

/* Digits, ':' and '.' (for an embedded IPv4 tail).  Zone ids ("%eth0")
 * are not supported. */
static int is_ipv6_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (hex_value(s[i]) < 0 && s[i] != ':' && s[i] != '.')
            return 0;
    return memchr(s, ':', n) != NULL;
}

/* What DNS names and IPv4 literals are made of; anything else is a typo
 * (a comma, a space) better caught here than as a resolver failure. */
static int is_hostname(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '.' &&
            s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

/* One host[:port] (host may be [v6]) of hp[0..alen), into a new *phost
 * string and *pport (default_port when absent). */
static redlock_status parse_hostport(const char *url, const char *hp,
                                     size_t alen, int default_port,
                                     char **phost, int *pport)
{
    char q[PIECE_SIZE];
    const char *host, *port = NULL;
    const char *tail = hp + alen;
    size_t hlen, plen = 0;

    if (alen > 0 && hp[0] == '[') {
        const char *close = memchr(hp, ']', alen);
        if (!close)
            return bad(url, "IPv6 address \"%s\" lacks its closing \"]\"",
                       piece(q, url, hp, alen));
        host = hp + 1;
        hlen = (size_t)(close - host);
        if (hlen == 0)
            return bad(url, "the IPv6 address \"[]\" is empty");
        if (!is_ipv6_text(host, hlen))
            return bad(url,
                       "\"[%s]\" is not an IPv6 address (hex digits, \":\" "
                       "and \".\" only)",
                       piece(q, url, host, hlen));
        const char *after = close + 1;
        if (after < tail) {
            if (*after != ':')
                return bad(url,
                           "unexpected \"%s\" after the IPv6 address "
                           "(expected \":port\")",
                           piece(q, url, after, (size_t)(tail - after)));
            port = after + 1;
            plen = (size_t)(tail - port);
        }
    } else {
        const char *colon = memchr(hp, ':', alen);
        if (colon && memchr(colon + 1, ':', (size_t)(tail - colon - 1)))
            return bad(url,
                       "host \"%s\" has more than one \":\"; an IPv6 "
                       "address needs brackets, as in redis://[::1]:6379",
                       piece(q, url, hp, alen));
        host = hp;
        hlen = colon ? (size_t)(colon - hp) : alen;
        if (colon) {
            port = colon + 1;
            plen = (size_t)(tail - port);
        }
        if (hlen == 0)
            return bad(url, "the host is missing");
        if (!is_hostname(host, hlen))
            return bad(url,
                       "host \"%s\" may hold only letters, digits, \".\", "
                       "\"-\" and \"_\"",
                       piece(q, url, host, hlen));
    }

    *pport = default_port;
    if (port) {
        redlock_status st = parse_port(url, port, plen, pport);
        if (st != REDLOCK_OK)
            return st;
    }
    *phost = copy_n(host, hlen);
    return *phost ? REDLOCK_OK : no_memory();
}

/* The userinfo of a host URL ends at the last '@' (a '@' in a password
 * or query must be %40); *hp is what follows it. */
static redlock_status take_userinfo(const char *url, const char *rest,
                                    redlock__url *u, const char **hp)
{
    const char *at = strrchr(rest, '@');
    *hp = rest;
    if (!at)
        return REDLOCK_OK;
    *hp = at + 1;
    return parse_userinfo(url, rest, (size_t)(at - rest), u);
}

static redlock_status parse_redis(const char *url, const char *rest,
                                  redlock__url *u)
{
    const char *hp;
    redlock_status st = take_userinfo(url, rest, u, &hp);
    if (st != REDLOCK_OK)
        return st;
    size_t alen = strcspn(hp, "/?");
    const char *tail = hp + alen;

    st = parse_hostport(url, hp, alen, DEFAULT_PORT, &u->host, &u->port);
    if (st != REDLOCK_OK)
        return st;
    if (*tail == '/') {
        const char *db = tail + 1;
        size_t dlen = strcspn(db, "?");
        if (dlen > 0) { /* "/" alone is db 0, like no path */
            st = parse_db(url, db, dlen, &u->db);
            if (st != REDLOCK_OK)
                return st;
        }
        tail = db + dlen;
    }
    if (*tail == '?')
        return bad_parameter(url, tail + 1,
                             "redis:// takes no query; the db is the path, "
                             "as in redis://host:6379/2");
    return REDLOCK_OK;
}

/* sentinel_user=U and sentinel_password=P, each at most once,
 * percent-decoded. */
static redlock_status parse_sentinel_query(const char *url, const char *query,
                                           redlock__url *u)
{
    const char *hint = "only sentinel_user and sentinel_password are "
                       "accepted";
    const char *p = query;

    for (;;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t name_len = eq ? (size_t)(eq - p) : n;
        char **dst = NULL;
        const char *what = NULL;

        if (n == 0)
            return bad(url, "empty query parameter after \"?\" or \"&\" (%s)",
                       hint);
        if (name_len == 13 && memcmp(p, "sentinel_user", 13) == 0) {
            dst = &u->sentinel_user;
            what = "sentinel_user";
        } else if (name_len == 17 && memcmp(p, "sentinel_password", 17) == 0) {
            dst = &u->sentinel_password;
            what = "sentinel_password";
        } else {
            return bad_parameter(url, p, hint);
        }
        if (*dst)
            return bad(url, "%s is given twice", what);
        if (!eq)
            return bad(url, "%s has no value (expected %s=...)", what, what);
        redlock_status st =
            decode_part(url, what, eq + 1, n - name_len - 1, dst);
        if (st != REDLOCK_OK)
            return st;
        if (p[n] == '\0')
            return REDLOCK_OK;
        p += n + 1;
    }
}

/* The comma-separated host[:port] list hp[0..alen) of a Sentinel or
 * Cluster URL into u->hosts and u->ports; what names one in messages
 * ("sentinel", "seed"). */
static redlock_status parse_hosts(const char *url, const char *hp,
                                  size_t alen, int default_port,
                                  const char *what, redlock__url *u)
{
    char q[PIECE_SIZE];
    const char *tail = hp + alen;

    for (const char *p = hp; p < tail;) {
        size_t ilen = strcspn(p, ",/?");
        if (u->nhosts == REDLOCK__MAX_HOSTS)
            return bad(url, "more than %d %s addresses", REDLOCK__MAX_HOSTS,
                       what);
        if (ilen == 0)
            return bad(url, "an empty %s address (two \",\" in a row, or "
                            "one at an end)", what);
        int k = u->nhosts;
        redlock_status st = parse_hostport(url, p, ilen, default_port,
                                           &u->hosts[k], &u->ports[k]);
        if (st != REDLOCK_OK)
            return st;
        u->nhosts++;
        /* The same sentinel twice would count twice towards the majority
         * whose answer the client believes (sentinel.c); a seed twice is
         * a typo, better said now than never. */
        for (int j = 0; j < k; j++)
            if (u->ports[j] == u->ports[k] &&
                strcasecmp(u->hosts[j], u->hosts[k]) == 0) {
                return bad(url, "%s \"%s\" is listed twice", what,
                           piece(q, url, p, ilen));
            }
        p += ilen;
        if (*p == ',') {
            p++;
            if (p == tail)
                return bad(url, "an empty %s address (two \",\" in a row, "
                                "or one at an end)", what);
        }
    }
    return REDLOCK_OK;
}

/* redis+sentinel://[userinfo@]host[:port][,host[:port]...]/NAME[/db][?query]:
 * the userinfo ends at the last '@' (a '@' in the query must be %40). */
static redlock_status parse_sentinel(const char *url, const char *rest,
                                     redlock__url *u)
{
    char q[PIECE_SIZE];
    const char *hp;
    redlock_status st = take_userinfo(url, rest, u, &hp);
    if (st != REDLOCK_OK)
        return st;
    size_t alen = strcspn(hp, "/?");
    const char *tail = hp + alen;
    if (alen == 0)
        return bad(url, "no sentinel address (expected "
                        "redis+sentinel://host:26379/master_name)");
    st = parse_hosts(url, hp, alen, DEFAULT_SENTINEL_PORT, "sentinel", u);
    if (st != REDLOCK_OK)
        return st;
    u->sentinel = 1;
    if (*tail != '/' || tail[1] == '/' || tail[1] == '?' || tail[1] == '\0')
        return bad(url, "the master name is missing (expected "
                        "redis+sentinel://host:26379/master_name)");
    const char *name = tail + 1;
    size_t nlen = strcspn(name, "/?");
    st = decode_part(url, "master name", name, nlen, &u->master);
    if (st != REDLOCK_OK)
        return st;
    if (u->master[0] == '\0')
        return bad(url, "the master name is empty");
    for (const char *c = u->master; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return bad(url, "the master name \"%s\" holds a space or a "
                            "byte that is not printable ASCII",
                       piece(q, url, name, nlen));
    tail = name + nlen;
    if (*tail == '/') {
        const char *db = tail + 1;
        size_t dlen = strcspn(db, "?");
        if (dlen > 0) {
            st = parse_db(url, db, dlen, &u->db);
            if (st != REDLOCK_OK)
                return st;
        }
        tail = db + dlen;
    }
    if (*tail == '?')
        return parse_sentinel_query(url, tail + 1, u);
    return REDLOCK_OK;
}

/* redis+cluster://[userinfo@]host[:port][,host[:port]...][/[0]]: seed
 * nodes, any one of which can tell where the cluster's slots are. */
static redlock_status parse_cluster(const char *url, const char *rest,
                                    redlock__url *u)
{
    char q[PIECE_SIZE];
    const char *hp;
    redlock_status st = take_userinfo(url, rest, u, &hp);
    if (st != REDLOCK_OK)
        return st;
    size_t alen = strcspn(hp, "/?");
    const char *tail = hp + alen;
    if (alen == 0)
        return bad(url, "no seed address (expected "
                        "redis+cluster://host:6379[,host:port...])");
    st = parse_hosts(url, hp, alen, DEFAULT_PORT, "seed", u);
    if (st != REDLOCK_OK)
        return st;
    u->cluster = 1;
    if (*tail == '/') {
        const char *db = tail + 1;
        size_t dlen = strcspn(db, "?");
        long v = 0;
        /* A cluster serves db 0 alone (SELECT of another fails there), so
         * any other db is refused now rather than by every node later. */
        if (dlen > 0 &&
            (parse_decimal(db, dlen, INT_MAX, &v) != NUM_OK || v != 0))
            return bad(url, "db \"%s\": a Redis Cluster has only db 0 "
                            "(write /0, or no path)",
                       piece(q, url, db, dlen));
        tail = db + dlen;
    }
    if (*tail == '?')
        return bad_parameter(url, tail + 1,
                             "redis+cluster:// takes no query");
    return REDLOCK_OK;
}

/* "db=N" is the only parameter, given at most once; "db" and "db=" are
 * refused rather than read as 0, since they are more likely a typo. */
static redlock_status parse_unix_query(const char *url, const char *query,
                                       redlock__url *u)
{
    const char *hint = "only db=N is accepted";
    const char *p = query;
    int seen_db = 0;

    for (;;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t name_len = eq ? (size_t)(eq - p) : n;

        if (n == 0)
            return bad(url, "empty query parameter after \"?\" or \"&\" (%s)",
                       hint);
        if (name_len != 2 || memcmp(p, "db", 2) != 0)
            return bad_parameter(url, p, hint);
        if (seen_db)
            return bad(url, "the db is given twice");
        if (!eq || n == 3)
            return bad(url, "the db is empty (expected ?db=N)");
        redlock_status st = parse_db(url, eq + 1, n - 3, &u->db);
        if (st != REDLOCK_OK)
            return st;
        seen_db = 1;
        if (p[n] == '\0')
            return REDLOCK_OK;
        p += n + 1;
    }
}

static redlock_status parse_unix(const char *url, const char *rest,
                                 redlock__url *u)
{
    const char *path = strchr(rest, '/');
    redlock_status st;

    if (!path)
        return bad(url,
                   "the socket path is missing (expected "
                   "unix:///path/to/socket)");
    if (path > rest) {
        const char *at = NULL;
        for (const char *p = rest; p < path; p++)
            if (*p == '@')
                at = p;
        /* No '@': "unix://tmp/sock", or a '/' inside a password. */
        if (!at)
            return bad(url,
                       "the socket path must be absolute (unix:///path, or "
                       "unix://user:password@/path with any \"/\" in them "
                       "written %%2F)");
        if (at + 1 != path)
            return bad(url,
                       "a unix:// URL takes no host (expected "
                       "unix://[user:password@]/path)");
        st = parse_userinfo(url, rest, (size_t)(at - rest), u);
        if (st != REDLOCK_OK)
            return st;
    }

    size_t plen = strcspn(path, "?");
    if (plen == 1)
        return bad(url, "the socket path \"/\" names no file");
    if (plen >= SUN_PATH_SIZE)
        return bad(url,
                   "the socket path is %zu bytes long; the limit is %zu",
                   plen, SUN_PATH_SIZE - 1);
    if (path[plen] == '?') {
        st = parse_unix_query(url, path + plen + 1, u);
        if (st != REDLOCK_OK)
            return st;
    }

    u->is_unix = 1;
    u->path = copy_n(path, plen);
    return u->path ? REDLOCK_OK : no_memory();
}

/* *out is overwritten, not freed: it may be uninitialized. */
redlock_status redlock__url_parse(const char *url, redlock__url *out)
{
    char q[PIECE_SIZE];
    redlock__url u;
    redlock_status st;

    memset(&u, 0, sizeof u);
    if (!out)
        return redlock__fail(REDLOCK_INVALID, "invalid URL: nowhere to "
                                              "store it (NULL)");
    memset(out, 0, sizeof *out);
    if (!url)
        return redlock__fail(REDLOCK_INVALID, "invalid URL: NULL");
    if (url[0] == '\0')
        return bad(url, "the URL is empty (expected redis://host or "
                        "unix:///path)");

    const char *sep = strstr(url, "://");
    size_t slen = sep ? (size_t)(sep - url) : 0;
    if (!sep || !is_scheme(url, slen))
        return bad(url, "it does not begin with a scheme (expected redis:// "
                        "or unix://)");

    if (same_word(url, slen, "redis"))
        st = parse_redis(url, sep + 3, &u);
    else if (same_word(url, slen, "unix"))
        st = parse_unix(url, sep + 3, &u);
    else if (same_word(url, slen, "rediss")) {
        st = parse_redis(url, sep + 3, &u);
        u.tls = 1;
    } else if (same_word(url, slen, "redis+sentinel"))
        st = parse_sentinel(url, sep + 3, &u);
    else if (same_word(url, slen, "rediss+sentinel")) {
        st = parse_sentinel(url, sep + 3, &u);
        u.tls = 1;
    } else if (same_word(url, slen, "redis+cluster"))
        st = parse_cluster(url, sep + 3, &u);
    else if (same_word(url, slen, "rediss+cluster")) {
        st = parse_cluster(url, sep + 3, &u);
        u.tls = 1;
    } else
        st = bad(url, "unsupported scheme \"%s\" (expected redis://, "
                      "rediss://, redis+sentinel://, redis+cluster:// or "
                      "unix://)",
                 piece(q, url, url, slen));

    if (st != REDLOCK_OK) {
        redlock__url_clear(&u);
        return st;
    }
    *out = u;
    return REDLOCK_OK;
}

void redlock__url_clear(redlock__url *u)
{
    if (!u)
        return;
    free(u->host);
    free(u->path);
    free(u->user);
    wipe_free(u->password);
    for (int i = 0; i < u->nhosts; i++)
        free(u->hosts[i]);
    free(u->master);
    free(u->sentinel_user);
    wipe_free(u->sentinel_password);
    memset(u, 0, sizeof *u);
}

/* "host:port,..." of a Sentinel or Cluster URL at buf + o; the new o
 * (which may pass len when cut). */
static size_t describe_hosts(const redlock__url *u, char *buf, size_t len,
                             size_t o)
{
    for (int i = 0; i < u->nhosts && o < len; i++) {
        const char *h = u->hosts[i];
        o += (size_t)snprintf(buf + o, len - o,
                              strchr(h, ':') ? "%s[%s]:%d" : "%s%s:%d",
                              i ? "," : "", h, u->ports[i]);
    }
    return o;
}

void redlock__url_describe(const redlock__url *u, char *buf, size_t len)
{
    char db[16] = "";

    if (!buf || len == 0)
        return;
    if (!u) {
        snprintf(buf, len, "(no URL)");
        return;
    }
    if (u->db != 0)
        snprintf(db, sizeof db, u->is_unix ? "?db=%d" : "/%d", u->db);
    if (u->sentinel) {
        size_t o = (size_t)snprintf(buf, len, "sentinel:%s(",
                                    u->master ? u->master : "?");
        o = describe_hosts(u, buf, len, o);
        if (o < len)
            snprintf(buf + o, len - o, ")%s", db);
    } else if (u->cluster) {
        size_t o = (size_t)snprintf(buf, len, "cluster(");
        o = describe_hosts(u, buf, len, o);
        if (o < len)
            snprintf(buf + o, len - o, ")");
    } else if (u->is_unix)
        snprintf(buf, len, "unix:%s%s", u->path ? u->path : "?", db);
    else if (u->host && strchr(u->host, ':'))
        snprintf(buf, len, "[%s]:%d%s", u->host, u->port, db);
    else
        snprintf(buf, len, "%s:%d%s", u->host ? u->host : "?", u->port, db);
}
