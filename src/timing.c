/* The arithmetic of intervals and validity, kept pure so that it is unit
 * tested on its own. */
#include "internal.h"


int64_t redlock__renew_interval_ms(int64_t ttl_ms, int64_t floor_ms)
{
    int64_t interval = ttl_ms / 3;
    if (interval < floor_ms)
        interval = floor_ms;
    /* The cap wins over the floor: a renewal every ttl/2 still leaves a
     * second chance before expiry on a healthy connection. */
    if (interval > ttl_ms / 2)
        interval = ttl_ms / 2;
    return interval < 1 ? 1 : interval;
}

int64_t redlock__drift_ms(int64_t ttl_ms, double drift_factor)
{
    /* Rounded up without libm, so that vendoring needs no -lm. */
    double d = (double)ttl_ms * drift_factor;
    int64_t ms = (int64_t)d;
    return ms + ((double)ms < d) + 2;
}

int64_t redlock__validity_end_ms(int64_t start_ms, int64_t ttl_ms,
                                 double drift_factor)
{
    return start_ms + ttl_ms - redlock__drift_ms(ttl_ms, drift_factor);
}

int64_t redlock__jitter_ms(int64_t delay_ms)
{
    int64_t half = delay_ms / 2;
    int64_t d = redlock__random_between(delay_ms - half, delay_ms + half);
    return d < 1 ? 1 : d;
}
