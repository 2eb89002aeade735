/*
 * A service that waits (up to a timeout) to become the single active
 * worker, and reacts when the watchdog reports the lock lost: it stops the
 * work it can no longer do exclusively, instead of finding out later.
 *
 *     service_wait [URL] [WAIT_SECONDS]
 */
#define _DEFAULT_SOURCE /* usleep */
#include <redlock.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int lost;

/* Runs on the watchdog thread: record and return at once. */
static void on_lost(const redlock_lock *lock, void *arg)
{
    (void)lock;
    atomic_store((atomic_int *)arg, 1);
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : getenv("REDLOCK_URL");
    int64_t wait_ms = (argc > 2 ? atoi(argv[2]) : 10) * (int64_t)1000;
    if (!url)
        url = "redis://127.0.0.1:6379";
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    redlock_options opts;
    redlock_options_init(&opts);
    opts.on_lost = on_lost;
    opts.on_lost_arg = &lost;

    redlock_status st;
    redlock_client *c = redlock_connect(&url, 1, &opts, &st);
    if (!c) {
        fprintf(stderr, "service: %s\n", redlock_last_error());
        return 1;
    }
    redlock_lock *lock;
    printf("[%d] waiting up to %lld ms to become the active worker\n",
           getpid(), (long long)wait_ms);
    st = redlock_acquire(c, "service:active", 15000, wait_ms, &lock);
    if (st != REDLOCK_OK) {
        printf("[%d] not active: %s\n", getpid(), redlock_last_error());
        redlock_client_free(c);
        return st == REDLOCK_BUSY ? 75 : 1;
    }
    redlock_keepalive(lock);
    printf("[%d] active (token %s)\n", getpid(), redlock_token(lock));
    while (!stop && !atomic_load(&lost))
        usleep(100000); /* serve */
    if (atomic_load(&lost))
        printf("[%d] lock lost: standing down\n", getpid());
    redlock_release(lock);
    redlock_client_free(c);
    return atomic_load(&lost) ? 70 : 0;
}
