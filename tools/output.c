/*
 * redlock: messages and exit statuses.  Every message is one whole line
 * written to stderr at once, control characters flattened; errors always,
 * steps (cli_note) with -v only.  No message prints a URL (the library's
 * messages name host:port only), so none prints a password.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int cli_verbose;
int cli_sigpipe_was_ignored;

/* Write one whole line to stderr at once, control characters flattened so
 * that it stays one line. */
static void put_line(const char *prefix, const char *fmt, va_list ap)
{
    char buf[2048];
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s", prefix);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    int m = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    if (m > 0)
        n += (size_t)m < sizeof buf - n ? (size_t)m : sizeof buf - n - 1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = ' ';
    buf[n++] = '\n';
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_line("redlock: ", fmt, ap);
    va_end(ap);
}

void cli_note(const char *fmt, ...)
{
    if (!cli_verbose)
        return;
    struct timespec ts;
    struct tm tm;
    char stamp[64], prefix[128];
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t t = ts.tv_sec;
    if (localtime_r(&t, &tm) == NULL ||
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(stamp, sizeof stamp, "%lld", (long long)t);
    char zone[16] = "";
    if (strftime(zone, sizeof zone, "%z", &tm) == 0)
        zone[0] = '\0';
    snprintf(prefix, sizeof prefix, "%s.%03ld%s redlock[%ld]: ", stamp,
             ts.tv_nsec / 1000000, zone, (long)getpid());
    va_list ap;
    va_start(ap, fmt);
    put_line(prefix, fmt, ap);
    va_end(ap);
}

void cli_err_status(const char *what, redlock_status st)
{
    const char *detail = redlock_last_error();
    if (detail && *detail)
        cli_err("%s: %s (%s)", what, redlock_strerror(st), detail);
    else
        cli_err("%s: %s", what, redlock_strerror(st));
}

int cli_exit_code(redlock_status st, int busy_code)
{
    switch (st) {
    case REDLOCK_OK:
        return XS_OK;
    case REDLOCK_BUSY:
        return busy_code;
    case REDLOCK_NOT_HELD:
        return XS_NOT_HELD;
    case REDLOCK_IO:
        return XS_UNAVAIL;
    case REDLOCK_SERVER:
        return XS_PROTOCOL;
    case REDLOCK_AUTH:
    case REDLOCK_TLS: /* an identity refused, ours or the server's */
        return XS_NOPERM;
    case REDLOCK_INVALID:
        return XS_USAGE;
    case REDLOCK_NOMEM:
        return XS_OSERR;
    }
    return XS_OSERR;
}

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *cli_signame(int sig)
{
    switch (sig) {
    case SIGHUP:
        return "SIGHUP";
    case SIGINT:
        return "SIGINT";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGTERM:
        return "SIGTERM";
    case SIGKILL:
        return "SIGKILL";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGUSR2:
        return "SIGUSR2";
    default:
        return "a signal";
    }
}

int cli_usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_err("%s (try 'redlock --help')", msg);
    return XS_USAGE;
}
