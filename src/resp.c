/* RESP command formatting into a reusable buffer.  We format ourselves
 * rather than through hiredis so that a connection's output buffer is
 * reused (no allocation per command) and sent with MSG_NOSIGNAL. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int reserve(redlock__buf *b, size_t more)
{
    if (more <= b->cap - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* "*3\r\n" or "$42\r\n": by hand, as snprintf per argument was a tenth of
 * an acquire's CPU time. */
static size_t header(char *out, char kind, size_t n)
{
    char digits[24];
    size_t k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    char *p = out;
    *p++ = kind;
    while (k)
        *p++ = digits[--k];
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - out);
}

size_t redlock__fmt_i64(char *out, int64_t v)
{
    char digits[24];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t k = 0, n = 0;
    do {
        digits[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[n++] = '-';
    while (k)
        out[n++] = digits[--k];
    out[n] = '\0';
    return n;
}

int redlock__resp_append(redlock__buf *b, int argc, const char *const *argv,
                         const size_t *argvlen)
{
    size_t need = 24;
    for (int i = 0; i < argc; i++) {
        if (argvlen[i] > SIZE_MAX - need - 26)
            return -1;
        need += argvlen[i] + 26;
    }
    if (reserve(b, need) != 0)
        return -1;
    char *p = b->data + b->len;
    p += header(p, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        p += header(p, '$', argvlen[i]);
        memcpy(p, argv[i], argvlen[i]);
        p += argvlen[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    b->len = (size_t)(p - b->data);
    return 0;
}

void redlock__buf_free(redlock__buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
