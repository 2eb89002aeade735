/*
 * redlock-pairs URL N: N acquire+release pairs on one key, nothing else.
 * For counting what a lock costs with tools that watch a whole process:
 *
 *     valgrind build/bench/redlock-pairs redis://127.0.0.1:6379 1000
 *     strace -c build/bench/redlock-pairs redis://127.0.0.1:6379 1000
 *
 * Run it with two values of N: the difference divided by the difference
 * of N is the cost of one pair (allocations, system calls).
 */
#include <redlock.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s URL N\n", argv[0]);
        return 64;
    }
    const char *url = argv[1];
    long n = atol(argv[2]);
    redlock_status st;
    redlock_client *c = redlock_connect(&url, 1, NULL, &st);
    if (!c) {
        fprintf(stderr, "redlock-pairs: %s\n", redlock_last_error());
        return 69;
    }
    for (long i = 0; i < n; i++) {
        redlock_lock *l;
        if ((st = redlock_acquire(c, "redlock-pairs", 30000, 0, &l)) != REDLOCK_OK ||
            (st = redlock_release(l)) != REDLOCK_OK) {
            fprintf(stderr, "redlock-pairs: %s\n", redlock_last_error());
            redlock_client_free(c);
            return 1;
        }
    }
    redlock_client_free(c);
    return 0;
}
