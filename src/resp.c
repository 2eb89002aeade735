/* RESP command formatting into a reusable buffer.  We format ourselves
 * rather than through hiredis so that a connection's output buffer is
 * reused (no allocation per command) and sent with MSG_NOSIGNAL. */
#include "internal.h"

#include <stdio.h>
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

static size_t header(char *out, char kind, size_t n)
{
    return (size_t)sprintf(out, "%c%zu\r\n", kind, n);
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
