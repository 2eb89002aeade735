/*
 * redlock: TLS and Sentinel options.  Flags (redis-cli's names) win over
 * $REDLOCK_CACERT, $REDLOCK_CACERTDIR, $REDLOCK_CERT, $REDLOCK_CERT_KEY and
 * $REDLOCK_SNI, so that a crontab line needs no more than -u rediss://...
 * ($REDLOCK_KEY is taken: `run` gives COMMAND the lock's name in it.)
 * The Sentinel credentials come only from $REDLOCK_SENTINEL_AUTH, never
 * from the command line, where ps would show them.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file given is checked here, not left to the library: the message
 * names it and says where it came from, before any connection is tried.
 * The open must not block: a FIFO would wait for a writer for ever (then
 * fstat refuses it, and devices, as not regular files). */
static int readable_file(const char *what, const char *path)
{
    if (*path == '\0')
        return cli_usage_error("%s is empty", what);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return cli_usage_error("%s %s: cannot read it: %s", what, path, strerror(errno));
    struct stat st;
    char byte;
    const char *why = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (read(fd, &byte, 1) != 1)
        why = "empty or unreadable";
    close(fd);
    if (why)
        return cli_usage_error("%s %s: %s", what, path, why);
    return -1;
}

static int readable_dir(const char *what, const char *path)
{
    if (*path == '\0')
        return cli_usage_error("%s is empty", what);
    DIR *d = opendir(path);
    if (!d)
        return cli_usage_error("%s %s: cannot read it: %s", what, path, strerror(errno));
    /* The library refuses these too (at redlock_connect, and only when a
     * URL uses TLS), but names neither the flag nor the variable: OpenSSL
     * opens a "<hash>.0" entry during a handshake, blocking, so a FIFO
     * there would hang it.  stat() never opens; dangling links are left
     * (opening them fails at once). */
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            fstatat(dirfd(d), e->d_name, &st, 0) != 0 || S_ISREG(st.st_mode) ||
            S_ISDIR(st.st_mode))
            continue;
        int rc = cli_usage_error("%s %s: %s is not a regular file", what, path, e->d_name);
        closedir(d);
        return rc;
    }
    closedir(d);
    return -1;
}

/* The flag's value, else the environment's (env: "$NAME"; empty counts
 * as unset). */
static const char *pick(const char *flag, const char *env, const char **what,
                        const char *flag_name)
{
    if (flag) {
        *what = flag_name;
        return flag;
    }
    const char *v = getenv(env + 1);
    if (v && *v) {
        *what = env;
        return v;
    }
    return NULL;
}

int cli_tls_options(const cli_args *a, redlock_options *o, cli_tls *t)
{
    memset(t, 0, sizeof *t);
    const char *what = NULL;
    int rc;
    o->tls = a->tls;
    o->tls_insecure = a->tls_insecure;
    if ((o->tls_cacert = pick(a->cacert, "$REDLOCK_CACERT", &what, "--cacert")) &&
        (rc = readable_file(what, o->tls_cacert)) >= 0)
        return rc;
    if ((o->tls_cacertdir = pick(a->cacertdir, "$REDLOCK_CACERTDIR", &what, "--cacertdir")) &&
        (rc = readable_dir(what, o->tls_cacertdir)) >= 0)
        return rc;
    const char *cert_what = NULL;
    if ((o->tls_cert = pick(a->cert, "$REDLOCK_CERT", &cert_what, "--cert")) &&
        (rc = readable_file(cert_what, o->tls_cert)) >= 0)
        return rc;
    if ((o->tls_key = pick(a->key, "$REDLOCK_CERT_KEY", &what, "--key")) &&
        (rc = readable_file(what, o->tls_key)) >= 0)
        return rc;
    if (!o->tls_cert != !o->tls_key)
        return cli_usage_error("%s needs %s as well: a client certificate and its key "
                               "go together",
                               o->tls_cert ? cert_what : what,
                               o->tls_cert ? "--key (or $REDLOCK_CERT_KEY)"
                                           : "--cert (or $REDLOCK_CERT)");
    if ((o->tls_sni = pick(a->sni, "$REDLOCK_SNI", &what, "--sni")) && *o->tls_sni == '\0')
        return cli_usage_error("%s is empty", what);

    /* "password", or "user:password" (a password with a ':' needs the
     * user: "default:pa:ss"). */
    const char *auth = getenv("REDLOCK_SENTINEL_AUTH");
    if (auth && *auth) {
        t->sentinel_auth_len = strlen(auth);
        if (!(t->sentinel_auth = strdup(auth))) {
            cli_err("out of memory");
            return XS_OSERR;
        }
        char *colon = strchr(t->sentinel_auth, ':');
        if (colon) {
            *colon = '\0';
            if (*t->sentinel_auth)
                o->sentinel_user = t->sentinel_auth;
            o->sentinel_password = colon + 1;
        } else {
            o->sentinel_password = t->sentinel_auth;
        }
    }
    return -1;
}

void cli_tls_free(cli_tls *t)
{
    if (t->sentinel_auth) {
        /* Wipe the password before the memory goes back. */
        memset(t->sentinel_auth, 0, t->sentinel_auth_len);
        free(t->sentinel_auth);
    }
    memset(t, 0, sizeof *t);
}
