/*
 * redlock: the nodes' URLs, from -u, then $REDLOCK_URL (comma-separated),
 * then the default.  $REDISCLI_AUTH is percent-encoded into URLs that
 * carry no password, so that it never shows in ps; the copies are wiped
 * before they are freed.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cli_urls_free(cli_urls *u)
{
    for (size_t i = 0; i < u->n; i++) {
        if (u->url[i]) {
            /* Wipe what may hold a password before it goes back. */
            memset(u->url[i], 0, strlen(u->url[i]));
            free(u->url[i]);
        }
    }
    free(u->env_copy);
    memset(u, 0, sizeof *u);
}

static int unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
           ch == '~';
}

/*
 * A malloc'd copy of url with `password` (raw, percent-encoded here) put in
 * when the URL carries no password of its own (a Sentinel URL's userinfo is
 * the master's); NULL when out of memory.
 * URLs of another scheme are copied unchanged (the library names the error).
 */
static char *with_password(const char *url, const char *password)
{
    static const char *const schemes[] = {
        "redis",           "rediss",        "unix",          "redis+sentinel",
        "rediss+sentinel", "redis+cluster", "rediss+cluster"};
    const char *sep = strstr(url, "://");
    int known = 0;
    for (size_t i = 0; sep && i < sizeof schemes / sizeof schemes[0]; i++)
        known |= (size_t)(sep - url) == strlen(schemes[i]) &&
                 strncasecmp(url, schemes[i], strlen(schemes[i])) == 0;
    if (!password || !*password || !known)
        return strdup(url);

    const char *rest = sep + 3;
    /* The authority ends at the first '/', '?' or '#' (unix://: at the
     * path); userinfo is what comes before its last '@'. */
    size_t alen = strcspn(rest, "/?#");
    const char *at = NULL;
    for (const char *p = rest; p < rest + alen; p++)
        if (*p == '@')
            at = p;
    const char *colon = NULL;
    if (at) {
        colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon && colon + 1 < at)
            return strdup(url); /* it has a password: the URL wins */
    }

    size_t plen = strlen(password);
    size_t len = strlen(url) + 3 * plen + 3;
    char *out = malloc(len);
    if (!out)
        return NULL;
    char *o = out;
    /* scheme:// and the user, if any */
    const char *user_end = at ? (colon ? colon : at) : rest;
    memcpy(o, url, (size_t)(user_end - url));
    o += user_end - url;
    *o++ = ':';
    for (size_t k = 0; k < plen; k++) {
        unsigned char ch = (unsigned char)password[k];
        if (unreserved(ch)) {
            *o++ = (char)ch;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    if (at) {
        strcpy(o, at); /* "@host..." */
    } else {
        *o++ = '@';
        strcpy(o, rest);
    }
    return out;
}

/* The next comma of a $REDLOCK_URL list that starts another URL: a
 * Sentinel or Cluster URL's own host list has commas too, but what follows
 * those is a host, never "scheme://". */
static char *next_url_comma(char *p)
{
    for (char *comma = strchr(p, ','); comma; comma = strchr(comma + 1, ',')) {
        const char *s = comma + 1;
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
        if (n > 0 && strncmp(s + n, "://", 3) == 0)
            return comma;
        if (*s == '\0' || *s == ',')
            return comma; /* an empty entry: refused below */
    }
    return NULL;
}

int cli_make_urls(const cli_args *a, cli_urls *u)
{
    const char *list[REDLOCK_MAX_NODES];
    size_t n = 0;
    memset(u, 0, sizeof *u);
    if (a->nurls > 0) {
        for (size_t i = 0; i < a->nurls; i++)
            list[n++] = a->urls[i];
    } else {
        const char *env = getenv("REDLOCK_URL");
        if (env && *env) {
            if (!(u->env_copy = strdup(env))) {
                cli_err("out of memory");
                return XS_OSERR;
            }
            char *p = u->env_copy;
            for (;;) {
                char *comma = next_url_comma(p);
                if (comma)
                    *comma = '\0';
                if (*p == '\0')
                    return cli_usage_error("$REDLOCK_URL has an empty URL in its "
                                           "comma-separated list");
                if (n >= REDLOCK_MAX_NODES)
                    return cli_usage_error("$REDLOCK_URL has too many URLs (at most %d)",
                                           REDLOCK_MAX_NODES);
                list[n++] = p;
                if (!comma)
                    break;
                p = comma + 1;
            }
        } else {
            list[n++] = DEFAULT_URL;
        }
    }
    const char *password = getenv("REDISCLI_AUTH");
    for (size_t i = 0; i < n; i++) {
        if (!(u->url[i] = with_password(list[i], password))) {
            cli_err("out of memory");
            return XS_OSERR;
        }
        u->n++;
    }
    return -1;
}
