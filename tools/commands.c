/*
 * redlock acquire, extend, release, status: one request each, for scripts
 * that take a lock in one step and give it back in another.  A permit of
 * a semaphore (acquire -n) is a lock on its slot's key, extended and
 * released as any lock.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_acquire(const cli_args *a, redlock_client *c)
{
    const char *key = a->pos[0];
    redlock_lock *lock = NULL;
    redlock_status st = a->holders > 0
                            ? redlock_acquire_n(c, key, a->holders, a->ttl_ms, a->wait_ms,
                                                &lock)
                            : redlock_acquire(c, key, a->ttl_ms, a->wait_ms, &lock);
    if (st == REDLOCK_BUSY) {
        if (a->holders > 1)
            cli_note("busy: all %d slots of \"%s\" are held elsewhere", a->holders, key);
        else
            cli_note("busy: \"%s\" is held elsewhere", key);
        return a->busy_code;
    }
    if (st != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "acquire: cannot acquire \"%.200s\"", key);
        cli_err_status(what, st);
        return cli_exit_code(st, a->busy_code);
    }
    /* One line that `read token fence slot` splits: TOKEN, then FENCE with
     * --fence, then with -n the slot's key (the lock that extend and
     * release name), last because a key may hold spaces. */
    const char *slot = redlock_key(lock);
    if (a->fence)
        printf("%s %" PRId64, redlock_token(lock), redlock_fence(lock));
    else
        printf("%s", redlock_token(lock));
    if (a->holders > 0)
        printf(" %s", slot);
    putchar('\n');
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* Nobody will know the token: do not leave the lock behind. */
        cli_err("acquire: cannot print the token (%s): releasing \"%s\"",
                strerror(errno), slot);
        redlock_release(lock);
        return XS_IOERR;
    }
    if (a->fence)
        cli_note("acquired \"%s\" token %s fence %" PRId64 " ttl %" PRId64 "ms", slot,
                 redlock_token(lock), redlock_fence(lock), a->ttl_ms);
    else
        cli_note("acquired \"%s\" token %s ttl %" PRId64 "ms", slot,
                 redlock_token(lock), a->ttl_ms);
    redlock_detach(lock);
    return XS_OK;
}

static int adopt(redlock_client *c, const char *cmd, const char *key,
                 const char *token, redlock_lock **lock)
{
    redlock_status st = redlock_adopt(c, key, token, lock);
    if (st == REDLOCK_NOT_HELD) {
        cli_err("%s: token %s does not hold \"%s\"", cmd, token, key);
        return XS_NOT_HELD;
    }
    if (st != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "%s: cannot check \"%.200s\"", cmd, key);
        cli_err_status(what, st);
        return cli_exit_code(st, XS_BUSY);
    }
    return -1;
}

int cli_extend(const cli_args *a, redlock_client *c)
{
    const char *key = a->pos[0], *token = a->pos[1];
    redlock_lock *lock = NULL;
    int rc = adopt(c, "extend", key, token, &lock);
    if (rc >= 0)
        return rc;
    redlock_status st = redlock_extend(lock, a->ttl_ms);
    redlock_detach(lock);
    if (st == REDLOCK_NOT_HELD) {
        cli_err("extend: token %s does not hold \"%s\"", token, key);
        return XS_NOT_HELD;
    }
    if (st != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "extend: cannot extend \"%.200s\"", key);
        cli_err_status(what, st);
        return cli_exit_code(st, XS_BUSY);
    }
    cli_note("renewed \"%s\" ttl %" PRId64 "ms", key, a->ttl_ms);
    return XS_OK;
}

int cli_release(const cli_args *a, redlock_client *c)
{
    const char *key = a->pos[0], *token = a->pos[1];
    redlock_lock *lock = NULL;
    int rc = adopt(c, "release", key, token, &lock);
    if (rc >= 0)
        return rc;
    redlock_status st = redlock_release(lock);
    if (st == REDLOCK_NOT_HELD) {
        cli_err("release: token %s does not hold \"%s\"", token, key);
        return XS_NOT_HELD;
    }
    if (st != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "release: cannot release \"%.200s\"", key);
        cli_err_status(what, st);
        return cli_exit_code(st, XS_BUSY);
    }
    cli_note("released \"%s\"", key);
    return XS_OK;
}

int cli_status(const cli_args *a, redlock_client *c)
{
    const char *key = a->pos[0];
    size_t len = 256;
    char *buf = NULL;
    int64_t pttl = 0;
    redlock_status st;
    for (;;) {
        char *nb = realloc(buf, len);
        if (!nb) {
            free(buf);
            cli_err("status: out of memory");
            return XS_OSERR;
        }
        buf = nb;
        st = redlock_inspect(c, key, buf, len, &pttl);
        if (st != REDLOCK_INVALID || len >= ((size_t)1 << 29))
            break;
        len *= 4; /* the holder's token is longer than the buffer */
    }
    int rc;
    if (st == REDLOCK_OK) {
        /* The first line is "TOKEN TTL", for scripts, whatever follows. */
        if (pttl < 0)
            printf("%s forever\n", buf);
        else
            printf("%s %" PRId64 "ms\n", buf, pttl);
        char host[80], since[40];
        long pid = 0;
        int64_t since_ms = 0;
        int who = cli_holder_of(buf, host, sizeof host, &pid, &since_ms) == 0;
        if (who) {
            cli_iso_utc(since_ms, since, sizeof since);
            /* For a person only: a script reading stdout gets one line. */
            if (isatty(STDOUT_FILENO))
                printf("taken by pid %ld on %s at %s\n", pid, host, since);
        }
        rc = fflush(stdout) == 0 ? XS_OK : XS_IOERR;
        if (who)
            cli_note("\"%s\" is held by pid %ld on %s since %s, token %s", key, pid,
                     host, since, buf);
        else
            cli_note("\"%s\" is held by %s", key, buf);
    } else if (st == REDLOCK_NOT_HELD) {
        cli_note("\"%s\" is free", key);
        rc = XS_NOT_HELD;
    } else {
        char what[256];
        snprintf(what, sizeof what, "status: cannot inspect \"%.200s\"", key);
        cli_err_status(what, st);
        rc = cli_exit_code(st, XS_BUSY);
    }
    free(buf);
    return rc;
}
