/*
 * Tokens: 128 random bits printed as a version-4 UUID (36 characters).
 *
 * getrandom(2) with no flags, not libuuid: uuid_generate_random() quietly
 * mixes in (and, when getrandom and /dev/urandom both fail, falls back to)
 * a jrand48 stream seeded from pid, uid and time, and costs six system
 * calls per token.  getrandom never returns weak bytes: before the kernel's
 * pool is first initialised (early boot) it blocks instead.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static int fill_urandom(unsigned char *b, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got == n ? 0 : -1;
}

static int fill_random(unsigned char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(b + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) /* ENOSYS: a kernel older than 3.17 */
            return fill_urandom(b + got, n - got);
        got += (size_t)r;
    }
    return 0;
}

redlock_status redlock__new_token(char out[REDLOCK__TOKEN_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    if (fill_random(b, sizeof b) != 0)
        return redlock__fail(REDLOCK_IO, "no random source for a token: %s",
                             strerror(errno));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
    return REDLOCK_OK;
}
