/* Status strings, the thread's last error, and the version. */
#include "internal.h"

#include <stdio.h>

/* One message per thread: callers on different threads never see each
 * other's failures, and nothing process-wide is kept. */
static _Thread_local char last_error[512];

redlock_status redlock__fail(redlock_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

void redlock__clear_error(void) { last_error[0] = '\0'; }

const char *redlock_last_error(void) { return last_error; }

const char *redlock_strerror(redlock_status status)
{
    switch (status) {
#define REDLOCK_STRERROR_CASE_(name, value, msg)                               \
    case REDLOCK_##name:                                                       \
        return msg;
        REDLOCK_STATUS_MAP(REDLOCK_STRERROR_CASE_)
#undef REDLOCK_STRERROR_CASE_
    }
    return "unknown status";
}

const char *redlock_version(void) { return REDLOCK_VERSION_STRING; }
