/* A program that uses libredlock the way an application would, built by
 * tests/consumers/run.sh against an installed or vendored copy.  It needs
 * no Redis: it checks the version, the messages and the option defaults,
 * and prints "redlock version=<version>". */
#include <redlock.h>

#include <stdio.h>
#include <string.h>

static int failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "consumer: FAILED: %s\n", what);
        failures++;
    }
}

int main(void)
{
    const char *v = redlock_version();
    check(v != NULL, "redlock_version() is not NULL");
    if (v == NULL)
        return 1;
    check(strcmp(v, REDLOCK_VERSION_STRING) == 0,
          "redlock_version() == REDLOCK_VERSION_STRING");
    check(REDLOCK_VERSION_NUMBER ==
              ((REDLOCK_VERSION_MAJOR << 16) | (REDLOCK_VERSION_MINOR << 8) |
               REDLOCK_VERSION_PATCH),
          "REDLOCK_VERSION_NUMBER");

    const char *ok = redlock_strerror(REDLOCK_OK);
    const char *busy = redlock_strerror(REDLOCK_BUSY);
    const char *other = redlock_strerror((redlock_status)12345);
    check(ok != NULL && *ok != '\0', "redlock_strerror(REDLOCK_OK)");
    check(busy != NULL && *busy != '\0', "redlock_strerror(REDLOCK_BUSY)");
    check(other != NULL, "redlock_strerror(unknown) is not NULL");
    check(ok != NULL && busy != NULL && strcmp(ok, busy) != 0,
          "distinct messages for OK and BUSY");
    check(redlock_last_error() != NULL, "redlock_last_error() is not NULL");

    redlock_options o;
    memset(&o, 0x5a, sizeof o);
    redlock_options_init(&o);
    check(o.connect_timeout_ms == 2000, "default connect_timeout_ms 2000");
    check(o.io_timeout_ms == 2000, "default io_timeout_ms 2000");
    check(o.node_timeout_ms == 0, "default node_timeout_ms 0");
    check(o.retry_delay_ms == 100, "default retry_delay_ms 100");
    check(o.drift_factor > 0.0099 && o.drift_factor < 0.0101,
          "default drift_factor 0.01");
    check(o.renew_floor_ms == 5000, "default renew_floor_ms 5000");
    check(o.max_hold_ms == 0, "default max_hold_ms 0");
    check(o.fencing == 0, "default fencing 0");
    check(o.min_replicas == 0, "default min_replicas 0");
    check(o.on_lost == NULL && o.on_lost_arg == NULL, "default on_lost NULL");
    redlock_options_init(NULL); /* ignored */

    if (failures != 0)
        return 1;
    printf("redlock version=%s\n", v);
    return 0;
}
