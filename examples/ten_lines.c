/* The README's "API in ten lines", in a main: built with the project, and
 * checked line by line against the README (tests/check_readme_example.sh),
 * so that the example users copy compiles and handles every failure.
 *
 *     redlock_ten_lines [URL]
 */
#include <redlock.h>

#include <stdio.h>

static void do_work(void) { puts("working"); }

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "redis://:secret@10.0.0.5:6379/0";
    redlock_status st;
    redlock_client *c = redlock_connect(&url, 1, NULL, &st);   /* NULL opts: defaults */
    if (!c) {                               /* unreachable, refused password, bad URL */
        fprintf(stderr, "connect: %s\n", redlock_last_error());
        return 1;
    }
    redlock_lock *lock;
    if ((st = redlock_acquire(c, "job:nightly", 30000, 0, &lock)) == REDLOCK_OK) {
        redlock_keepalive(lock);            /* renewed every 10 s until released */
        do_work();                          /* check redlock_held(lock) at safe points */
        redlock_release(lock);              /* compare-and-delete; frees the handle */
    } else {                                /* BUSY: someone else has it */
        fprintf(stderr, "%s: %s\n", redlock_strerror(st), redlock_last_error());
    }
    redlock_client_free(c);
    return st == REDLOCK_OK ? 0 : 1;
}
