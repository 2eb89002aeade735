/*
 * A cron job that must run on one host at a time: take the lock or give
 * up at once, keep it alive while working, release it when done.
 *
 *     cron_job [URL] [SECONDS]      URL defaults to $REDLOCK_URL, then
 *                                   redis://127.0.0.1:6379
 *
 * Exit status: 0 done, 75 another host holds the lock (EX_TEMPFAIL, what
 * cron wrappers treat as "try next time"), 69 Redis unreachable, 70 the
 * lock was lost while working, 1 anything else.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <redlock.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : getenv("REDLOCK_URL");
    int seconds = argc > 2 ? atoi(argv[2]) : 3;
    if (!url)
        url = "redis://127.0.0.1:6379";

    redlock_status st;
    redlock_client *c = redlock_connect(&url, 1, NULL, &st);
    if (!c) {
        fprintf(stderr, "cron_job: %s\n", redlock_last_error());
        return st == REDLOCK_IO ? 69 : 1;
    }

    redlock_lock *lock;
    st = redlock_acquire(c, "cron:nightly-report", 30000, 0, &lock);
    if (st == REDLOCK_BUSY) {
        printf("[%d] busy: another host is running the report\n", getpid());
        redlock_client_free(c);
        return 75;
    }
    if (st != REDLOCK_OK) {
        fprintf(stderr, "cron_job: %s\n", redlock_last_error());
        redlock_client_free(c);
        return st == REDLOCK_IO ? 69 : 1;
    }

    /* Renewed every 10 s from now on, however long the work takes. */
    redlock_keepalive(lock);
    printf("[%d] acquired %s, working for %d s\n", getpid(),
           redlock_token(lock), seconds);
    int lost = 0;
    for (int i = 0; i < seconds * 10 && !lost; i++) {
        usleep(100000); /* one slice of the real work */
        lost = !redlock_held(lock);
    }
    if (lost) {
        fprintf(stderr, "[%d] lost the lock: stopping\n", getpid());
        redlock_release(lock);
        redlock_client_free(c);
        return 70;
    }
    st = redlock_release(lock);
    printf("[%d] done, released: %s\n", getpid(), redlock_strerror(st));
    redlock_client_free(c);
    return st == REDLOCK_OK ? 0 : 1;
}
