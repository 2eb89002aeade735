/*
 * The files the tls_* options name, looked at before OpenSSL reads them:
 * a FIFO or a device there would block OpenSSL's blocking open() for
 * ever, and "not a regular file" says more than OpenSSL's error.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file option must name a readable regular file: say so plainly before
 * OpenSSL's own, vaguer error, and before OpenSSL opens it.  A FIFO (or a
 * device) would block OpenSSL's blocking open, or its reads, for ever, so
 * this open must not block (O_NONBLOCK) and a non-regular file is refused
 * (fstat: symbolic links followed, as OpenSSL follows them).  OpenSSL then
 * opens the path again; one swapped in between is the caller's own doing
 * (the option names a path the caller controls). */
redlock_status redlock__tls_check_file(const char *opt, const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return redlock__fail(REDLOCK_INVALID, "%s \"%.200s\": cannot read: %s",
                             opt, path, strerror(errno));
    struct stat st;
    int regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    if (!regular)
        return redlock__fail(REDLOCK_INVALID,
                             "%s \"%.200s\": not a regular file", opt, path);
    return REDLOCK_OK;
}

/* tls_cacertdir: OpenSSL opens "<hash>.N" in it only when a handshake
 * looks an issuer up, with a blocking open: a FIFO there would stall that
 * handshake past connect_timeout_ms, for ever.  So every entry is looked
 * at now (stat, which never opens it) and one that is neither a regular
 * file nor a directory is refused, naming it.  An entry that cannot be
 * stat'ed (a dangling link) is left: OpenSSL's open of it fails at once. */
redlock_status redlock__tls_check_dir(const char *opt, const char *path)
{
    DIR *d = access(path, R_OK | X_OK) == 0 ? opendir(path) : NULL;
    if (!d)
        return redlock__fail(REDLOCK_INVALID, "%s \"%.200s\": cannot read: %s",
                             opt, path, strerror(errno));
    redlock_status st = REDLOCK_OK;
    struct dirent *e;
    while (st == REDLOCK_OK && (errno = 0, e = readdir(d)) != NULL) {
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            fstatat(dirfd(d), e->d_name, &sb, 0) != 0)
            continue;
        if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
            st = redlock__fail(REDLOCK_INVALID,
                               "%s \"%.200s\": %.100s is not a regular file",
                               opt, path, e->d_name);
    }
    if (st == REDLOCK_OK && errno != 0)
        st = redlock__fail(REDLOCK_INVALID, "%s \"%.200s\": cannot read: %s",
                           opt, path, strerror(errno));
    closedir(d);
    return st;
}
