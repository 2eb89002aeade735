/*
 * libFuzzer target: the node URL parser (src/uri.c).
 *
 * The input, made a C string (cut at its first NUL), goes to
 * redlock__url_parse().  Whatever it is:
 *  - nothing crashes, overflows or leaks (ASan, UBSan, LeakSanitizer);
 *  - a success gives a coherent URL (a host and a port in 1..65535, an
 *    absolute unix path that fits sun_path, or a Sentinel or Cluster URL's
 *    list of such hosts; db >= 0, and 0 for a cluster), which describe()
 *    writes without overflowing any buffer size, and clear() zeroes;
 *  - a failure is REDLOCK_INVALID or REDLOCK_NOMEM, leaves the struct
 *    cleared, and a message (under 512 bytes, no control bytes) that never
 *    shows the password: the text after "://user:" up to the last '@'.
 *    Checked by difference: the same URL with every letter, digit and
 *    high byte of the password changed (within its class, so that the
 *    parse takes the same path) must get the very same status and message.
 *    In a unix:// URL only the part before the path changes: past it, the
 *    span up to the last '@' (masked too) holds the path and the query,
 *    whose bytes steer the parse.
 *    (A plain "is the password in the message" test cannot tell the
 *    password from the same bytes elsewhere in the URL or in the message's
 *    own words, and libFuzzer soon finds such inputs.)
 * A broken invariant is reported with __builtin_trap(), which libFuzzer
 * records as a crash with the input that caused it.
 */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_url: %s: ", #cond);                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            __builtin_trap();                                                  \
        }                                                                      \
    } while (0)

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* The password as the spec defines it: after the first ':' that follows
 * "://", up to the last '@'.  NULL when there is none. */
static const char *password_part(const char *url, size_t *len)
{
    const char *sep = strstr(url, "://");
    if (!sep)
        return NULL;
    const char *start = sep + 3;
    const char *at = strrchr(start, '@');
    if (!at)
        return NULL;
    const char *colon = memchr(start, ':', (size_t)(at - start));
    if (!colon)
        return NULL;
    *len = (size_t)(at - colon - 1);
    return colon + 1;
}

/* Another byte of the same class, as far as parsing goes: hex digits stay
 * hex digits (and '0' stays, so "%00" keeps meaning NUL), other letters stay
 * non-hex letters, high bytes stay high, control bytes stay control bytes;
 * punctuation, which the grammar may use, is kept. */
static char other(char ch)
{
    unsigned char c = (unsigned char)ch;
    if (c >= '1' && c <= '9')
        return (char)(c == '9' ? '1' : c + 1);
    if (c >= 'a' && c <= 'f')
        return (char)(c == 'f' ? 'a' : c + 1);
    if (c >= 'A' && c <= 'F')
        return (char)(c == 'F' ? 'A' : c + 1);
    if (c >= 'g' && c <= 'z')
        return (char)(c == 'z' ? 'g' : c + 1);
    if (c >= 'G' && c <= 'Z')
        return (char)(c == 'Z' ? 'G' : c + 1);
    if (c >= 0x80)
        return (char)(c == 0xff ? 0x80 : c + 1);
    if (c >= 0x01 && c < 0x20)
        return (char)(c == 0x1f ? 0x01 : c + 1);
    return ch;
}

static void check_describe(const redlock__url *u)
{
    static const size_t sizes[] = {1, 2, 7, 16, 64, 300};
    char buf[300 + 16];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        memset(buf, 0x5a, sizeof buf);
        redlock__url_describe(u, buf, n);
        CHECK(memchr(buf, '\0', n) != NULL, "describe() into %zu bytes: no NUL",
              n);
        for (size_t j = n; j < sizeof buf; j++)
            CHECK((unsigned char)buf[j] == 0x5a,
                  "describe() wrote past %zu bytes", n);
    }
    redlock__url_describe(u, NULL, 0);
    redlock__url_describe(u, buf, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';

    redlock__url u;
    memset(&u, 0xa5, sizeof u); /* the parser must not trust *out */
    redlock_status st = redlock__url_parse(url, &u);

    if (st == REDLOCK_OK) {
        CHECK(u.is_unix == 0 || u.is_unix == 1, "is_unix %d", u.is_unix);
        CHECK(u.db >= 0, "db %d", u.db);
        CHECK(u.sentinel + u.cluster + u.is_unix <= 1 && u.sentinel >= 0 &&
                  u.cluster >= 0,
              "sentinel %d cluster %d is_unix %d", u.sentinel, u.cluster,
              u.is_unix);
        CHECK((u.nhosts > 0) == (u.sentinel || u.cluster), "nhosts %d",
              u.nhosts);
        if (u.is_unix) {
            CHECK(u.path && u.path[0] == '/' && !u.host, "unix without path");
            CHECK(strlen(u.path) < sizeof(((struct sockaddr_un *)0)->sun_path),
                  "path of %zu bytes", strlen(u.path));
        } else if (u.nhosts > 0) {
            CHECK(!u.host && !u.path && u.port == 0, "a host besides the list");
            CHECK(u.nhosts <= REDLOCK__MAX_HOSTS, "nhosts %d", u.nhosts);
            for (int i = 0; i < u.nhosts; i++) {
                CHECK(u.hosts[i] && u.hosts[i][0], "host %d missing", i);
                CHECK(u.ports[i] >= 1 && u.ports[i] <= 65535, "port %d",
                      u.ports[i]);
            }
            if (u.sentinel)
                CHECK(u.master && u.master[0], "Sentinel without master");
            else
                CHECK(u.db == 0 && !u.master && !u.sentinel_user &&
                          !u.sentinel_password,
                      "a cluster with db %d or Sentinel parts", u.db);
        } else {
            CHECK(u.host && !u.path, "redis:// without host");
            CHECK(u.port >= 1 && u.port <= 65535, "port %d", u.port);
        }
        CHECK(!u.user || u.user[0], "empty user is not NULL");
        check_describe(&u);
        redlock__url_clear(&u);
        CHECK(all_zero(&u, sizeof u), "clear() left something");
        redlock__url_clear(&u); /* twice is fine */
    } else {
        CHECK(st == REDLOCK_INVALID || st == REDLOCK_NOMEM, "status %d", st);
        CHECK(all_zero(&u, sizeof u), "a failure left the struct dirty");
        const char *msg = redlock_last_error();
        size_t mlen = strlen(msg);
        CHECK(mlen > 0 && mlen < 512, "message of %zu bytes", mlen);
        for (size_t i = 0; i < mlen; i++)
            CHECK((unsigned char)msg[i] >= 0x20 && msg[i] != 0x7f,
                  "control byte 0x%02x in the message", (unsigned char)msg[i]);
        size_t pwlen = 0;
        const char *pw = password_part(url, &pwlen);
        /* unix://: stop at the path (see above) */
        const char *sep = pw ? strstr(url, "://") : NULL;
        if (sep && sep - url == 4 && strncasecmp(url, "unix", 4) == 0) {
            const char *path = strchr(sep + 3, '/');
            if (path && path < pw + pwlen)
                pwlen = path > pw ? (size_t)(path - pw) : 0;
        }
        if (pw && pwlen > 0) {
            char *msg1 = strdup(msg);
            char *url2 = strdup(url);
            if (msg1 && url2) {
                size_t at = (size_t)(pw - url);
                for (size_t i = at; i < at + pwlen; i++)
                    url2[i] = other(url2[i]);
                redlock__url u2;
                redlock_status st2 = redlock__url_parse(url2, &u2);
                redlock__url_clear(&u2);
                CHECK(st2 == st && strcmp(redlock_last_error(), msg1) == 0,
                      "the message depends on the password's letters: "
                      "\"%s\" and \"%s\"",
                      msg1, redlock_last_error());
            }
            free(msg1);
            free(url2);
        }
    }
    /* describe() of a cleared or NULL URL is harmless too */
    check_describe(&u);
    redlock__url_describe(NULL, (char[8]){0}, 8);
    free(url);
    return 0;
}
