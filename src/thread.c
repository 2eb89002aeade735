/* The library's threads (watchdog, notifier) and their monotonic waits. */
#include "internal.h"

#include <signal.h>
#include <time.h>

int redlock__thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    /* The thread inherits the creator's mask: fill it for the moment. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void redlock__cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

void redlock__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                              int64_t deadline_ns)
{
    if (deadline_ns == INT64_MAX) {
        pthread_cond_wait(cv, mu);
        return;
    }
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000,
                          .tv_nsec = deadline_ns % 1000000000};
    pthread_cond_timedwait(cv, mu, &ts);
}
