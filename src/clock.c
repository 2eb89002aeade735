/* Monotonic time, sleeping and jitter.  The wall clock is never read: a
 * clock step must not shorten or stretch a lock's validity. */
#include "internal.h"

#include <errno.h>
#include <sys/random.h>
#include <time.h>

int64_t redlock__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t redlock__now_ms(void) { return redlock__now_ns() / 1000000; }

void redlock__sleep_until_ns(int64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000,
                          .tv_nsec = deadline_ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* xorshift64*: jitter needs spread, not secrecy (tokens: token.c). */
static _Thread_local uint64_t rng_state;

static uint64_t rng_next(void)
{
    if (rng_state == 0) {
        if (getrandom(&rng_state, sizeof rng_state, GRND_NONBLOCK) !=
            (ssize_t)sizeof rng_state)
            rng_state = (uint64_t)redlock__now_ns();
        rng_state |= 1;
    }
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

int64_t redlock__random_between(int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}
