/*
 * Redlock: one lock over N independent Redis masters (not replicas of one
 * another).  The lock is held when a majority said yes while enough of its
 * ttl was left; up to (N-1)/2 nodes may be down or stalled.
 *
 *     redlock_quorum URL URL URL [URL URL]
 *     redlock_quorum               uses $REDLOCK_URL, comma-separated
 */
#define _DEFAULT_SOURCE /* strdup, strsep */
#include <redlock.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *urls[REDLOCK_MAX_NODES];
    size_t n = 0;
    char *env = NULL;
    if (argc > 1) {
        for (int i = 1; i < argc && n < REDLOCK_MAX_NODES; i++)
            urls[n++] = argv[i];
    } else if (getenv("REDLOCK_URL") && (env = strdup(getenv("REDLOCK_URL")))) {
        char *rest = env, *tok;
        while ((tok = strsep(&rest, ",")) && n < REDLOCK_MAX_NODES)
            if (*tok)
                urls[n++] = tok;
    }
    if (n == 0) {
        fprintf(stderr, "usage: %s URL URL URL...\n", argv[0]);
        free(env);
        return 64;
    }

    redlock_options opts;
    redlock_options_init(&opts);
    /* Per node, much shorter than the ttl: a stalled node costs this much,
     * not the whole validity (the Redlock paper's advice). */
    opts.node_timeout_ms = 50;

    redlock_status st;
    redlock_client *c = redlock_connect(urls, n, &opts, &st);
    if (!c) {
        fprintf(stderr, "connect: %s\n", redlock_last_error());
        free(env);
        return 69;
    }
    redlock_lock *lock;
    st = redlock_acquire(c, "quorum:example", 10000, 2000, &lock);
    if (st == REDLOCK_OK) {
        printf("held on a majority of %zu nodes for at least %lld ms\n", n,
               (long long)redlock_validity_ms(lock));
        /* ... the exclusive work, shorter than the validity ... */
        st = redlock_release(lock);
        printf("released: %s\n", redlock_strerror(st));
    } else {
        /* The message says how many nodes said yes, no, or failed. */
        printf("not acquired (%s): %s\n", redlock_strerror(st),
               redlock_last_error());
    }
    redlock_client_free(c);
    free(env);
    return st == REDLOCK_OK ? 0 : st == REDLOCK_BUSY ? 75 : 1;
}
