/*
 * TLS with OpenSSL over the sockets the library owns (rediss://).
 *
 * One SSL_CTX per client, built at redlock_connect from the tls_* options;
 * one SSL per connection, driven non-blocking inside io.c's poll loop, so
 * that handshakes of all nodes run concurrently under the connect
 * deadline.  The SSL reads and writes through a BIO of ours: OpenSSL's
 * socket BIO writes with write(), which raises SIGPIPE on a closed socket;
 * ours sends with MSG_NOSIGNAL, and never blocks (MSG_DONTWAIT) whatever
 * the socket's mode.  Sessions are kept per node, so that a new connection
 * to a node resumes rather than repeats the full handshake.
 */
#include "internal.h"

#include <string.h>

/* What is wrong with the tls_* options in any build, TLS or not. */
static redlock_status check_options(const redlock_options *o)
{
    if (!o->tls_cert != !o->tls_key)
        return redlock__fail(REDLOCK_INVALID, "%s given without %s",
                             o->tls_cert ? "tls_cert" : "tls_key",
                             o->tls_cert ? "tls_key" : "tls_cert");
    /* Else caught only at the first connection, as a vaguer error. */
    if (o->tls_sni && *o->tls_sni == '\0')
        return redlock__fail(REDLOCK_INVALID, "tls_sni is empty");
    /* A name goes into the handshake as it is: no spaces or control
     * characters, and no longer than DNS allows. */
    for (const char *p = o->tls_sni; p && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return redlock__fail(REDLOCK_INVALID,
                                 "tls_sni holds a space or a control "
                                 "character");
    if (o->tls_sni && strlen(o->tls_sni) > 253)
        return redlock__fail(REDLOCK_INVALID,
                             "tls_sni is %zu bytes long; a host name has at "
                             "most 253",
                             strlen(o->tls_sni));
    return REDLOCK_OK;
}

#ifdef REDLOCK_WITH_TLS

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;
static int conn_index = -1; /* SSL ex_data slot: the redlock__conn */

static int bio_write(BIO *b, const char *buf, int len)
{
    redlock__conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t w;
    do
        w = send(c->ctx->fd, buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w >= 0)
        return (int)w;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_write(b);
    else
        c->tls_errno = errno;
    return -1;
}

/* Also notes the first byte the peer sent, to tell a server that does
 * not speak TLS from a TLS error. */
static int bio_read(BIO *b, char *buf, int len)
{
    redlock__conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r;
    do
        r = recv(c->ctx->fd, buf, (size_t)len, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
        if (c->rx == 0)
            c->tls_first = (unsigned char)buf[0];
        c->rx += (size_t)r;
        return (int)r;
    }
    if (r == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_read(b);
    else
        c->tls_errno = errno;
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void make_bio_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "redlock socket");
    if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
        BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
        bio_method = m;
    else
        BIO_meth_free(m);
    conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The reason of OpenSSL's oldest queued error, its text into buf. */
static int ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error();
    if (buf && len) {
        if (e)
            ERR_error_string_n(e, buf, len);
        else
            snprintf(buf, len, "unknown error");
    }
    return e ? ERR_GET_REASON(e) : 0;
}

/* Keep the newest session of each node for the next connection. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    redlock__conn *c = SSL_get_ex_data(ssl, conn_index);
    if (!c || !c->node)
        return 0;
    redlock__node *n = c->node;
    pthread_mutex_lock(&n->mu);
    SSL_SESSION *old = n->tls_session;
    n->tls_session = sess;
    n->tls_session_gen = c->gen;
    pthread_mutex_unlock(&n->mu);
    SSL_SESSION_free(old);
    return 1; /* we keep the reference */
}

/* Asked for a certificate we do not have: remember it, for the message
 * when the server then closes (a reset often loses its alert). */
static int no_client_cert(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
    (void)x509;
    (void)pkey;
    redlock__conn *c = SSL_get_ex_data(ssl, conn_index);
    if (c)
        c->tls_cert_wanted = 1;
    return 0;
}

/* Asked for a key's passphrase: there is none (tls_key must be
 * unencrypted).  OpenSSL's default would prompt on the terminal, or print
 * to stderr and read stdin: block the caller and eat its input. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

static redlock_status load_fail(const char *opt, const char *path,
                                const char *what)
{
    char why[200];
    ssl_reason(why, sizeof why);
    ERR_clear_error();
    return redlock__fail(REDLOCK_INVALID, "%s \"%.200s\": %s (%.150s)", opt,
                         path, what, why);
}

/* The system's store, as OpenSSL will read it ($SSL_CERT_FILE, else its
 * built-in file; $SSL_CERT_DIR, a ':'-separated list, else its built-in
 * directory), gets the same checks as the options' files: a FIFO there
 * would hang too.  What does not exist is no error (OpenSSL skips it). */
static redlock_status check_default_store(void)
{
    const char *fenv = X509_get_default_cert_file_env();
    const char *file = getenv(fenv);
    const char *fname = file ? fenv : "the system's CA file";
    if (!file)
        file = X509_get_default_cert_file();
    struct stat sb;
    redlock_status st = REDLOCK_OK;
    if (stat(file, &sb) == 0 || errno != ENOENT)
        st = redlock__tls_check_file(fname, file);
    const char *denv = X509_get_default_cert_dir_env();
    const char *dirs = getenv(denv);
    const char *dname = dirs ? denv : "the system's CA directory";
    char *list = strdup(dirs ? dirs : X509_get_default_cert_dir());
    if (!list)
        return redlock__fail(REDLOCK_NOMEM, "out of memory");
    char *save = NULL;
    for (char *d = strtok_r(list, ":", &save); d && st == REDLOCK_OK;
         d = strtok_r(NULL, ":", &save))
        if (stat(d, &sb) == 0 || errno != ENOENT)
            st = redlock__tls_check_dir(dname, d);
    free(list);
    return st;
}

redlock_status redlock__tls_ctx_new(const redlock_options *o, int need,
                                    struct ssl_ctx_st **out)
{
    *out = NULL;
    redlock_status st = check_options(o);
    if (st != REDLOCK_OK)
        return st;
    if (!need)
        return REDLOCK_OK;
    pthread_once(&bio_once, make_bio_method);
    if (!bio_method || conn_index < 0)
        return redlock__fail(REDLOCK_NOMEM, "out of memory (TLS setup)");
    if ((o->tls_cacert && (st = redlock__tls_check_file("tls_cacert", o->tls_cacert))) ||
        (o->tls_cacertdir &&
         (st = redlock__tls_check_dir("tls_cacertdir", o->tls_cacertdir))) ||
        (o->tls_cert && (st = redlock__tls_check_file("tls_cert", o->tls_cert))) ||
        (o->tls_key && (st = redlock__tls_check_file("tls_key", o->tls_key))))
        return st;

    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ERR_clear_error();
        return redlock__fail(REDLOCK_NOMEM, "out of memory (SSL_CTX_new)");
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                            SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session);
    st = REDLOCK_OK;
    if (o->tls_insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (o->tls_cacert || o->tls_cacertdir) {
            if (!SSL_CTX_load_verify_locations(ctx, o->tls_cacert,
                                               o->tls_cacertdir))
                st = load_fail(o->tls_cacert ? "tls_cacert" : "tls_cacertdir",
                               o->tls_cacert ? o->tls_cacert : o->tls_cacertdir,
                               "no usable CA certificate");
        } else if ((st = check_default_store()) != REDLOCK_OK) {
            /* named there */
        } else if (!SSL_CTX_set_default_verify_paths(ctx)) {
            st = load_fail("the system's CA store", "default paths",
                           "cannot be loaded");
        }
    }
    if (st == REDLOCK_OK && o->tls_cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1)
            st = load_fail("tls_cert", o->tls_cert, "not a PEM certificate");
        else if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key,
                                             SSL_FILETYPE_PEM) != 1)
            st = load_fail("tls_key", o->tls_key,
                           ERR_GET_REASON(ERR_peek_last_error()) ==
                                   X509_R_KEY_VALUES_MISMATCH
                               ? "does not match the certificate of tls_cert"
                               : "not an unencrypted PEM private key");
        else if (SSL_CTX_check_private_key(ctx) != 1)
            st = load_fail("tls_key", o->tls_key,
                           "does not match the certificate of tls_cert");
    } else if (st == REDLOCK_OK) {
        SSL_CTX_set_client_cert_cb(ctx, no_client_cert);
    }
    if (st != REDLOCK_OK) {
        SSL_CTX_free(ctx);
        return st;
    }
    *out = ctx;
    return REDLOCK_OK;
}

void redlock__tls_ctx_free(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

void redlock__tls_node_clear(redlock__node *n)
{
    SSL_SESSION_free(n->tls_session);
    n->tls_session = NULL;
}

static int is_ip(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

redlock_status redlock__tls_start(redlock__node *n, redlock__conn *c,
                                  const char *host)
{
    const redlock_options *o = n->opts;
    const char *name = o->tls_sni ? o->tls_sni : host;
    ERR_clear_error();
    SSL *ssl = SSL_new(n->tls_ctx);
    BIO *bio = ssl ? BIO_new(bio_method) : NULL;
    c->tls_name = bio ? strdup(name) : NULL;
    if (!c->tls_name) {
        BIO_free(bio);
        SSL_free(ssl);
        ERR_clear_error();
        return redlock__fail(REDLOCK_NOMEM, "out of memory (SSL_new)");
    }
    BIO_set_data(bio, c);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_ex_data(ssl, conn_index, c);
    int ok = 1;
    if (o->tls_sni || !is_ip(name)) {
        ok = SSL_set_tlsext_host_name(ssl, name) == 1;
        /* The name must be among the certificate's DNS names: never its
         * subject's CN, which OpenSSL otherwise consults when there are
         * none (RFC 6125 6.4.4; browsers ignore the CN altogether).  A
         * certificate for IP:127.0.0.1 with CN=localhost is not one for
         * localhost. */
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
        if (ok && !o->tls_insecure)
            ok = SSL_set1_host(ssl, name) == 1;
    } else if (!o->tls_insecure) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
    }
    if (!ok) {
        SSL_free(ssl);
        ERR_clear_error();
        return redlock__fail(REDLOCK_INVALID,
                             "%s: cannot check the certificate against "
                             "\"%.200s\"", n->name, name);
    }
    /* Only a session of the same address: the sentinels may have moved
     * the master to a host the session (and its checked name) is not
     * for. */
    pthread_mutex_lock(&n->mu);
    if (n->tls_session && n->tls_session_gen == c->gen)
        SSL_set_session(ssl, n->tls_session);
    pthread_mutex_unlock(&n->mu);
    SSL_set_connect_state(ssl);
    c->ssl = ssl;
    c->node = n;
    return REDLOCK_OK;
}

void redlock__tls_free(redlock__conn *c)
{
    /* No SSL_shutdown: its close_notify would wait on a peer that may be
     * dead; the socket is closed (reset) by the caller.  Marked as shut
     * down all the same: else SSL_free takes the connection's session for
     * a bad one and makes it (which the node keeps) not resumable. */
    SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c->ssl);
    c->ssl = NULL;
    free(c->tls_name);
    c->tls_name = NULL;
}

static int set_fail(redlock__conn *c, redlock_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_fail(redlock__conn *c, redlock_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail, sizeof c->fail, fmt, ap);
    va_end(ap);
    c->fail_st = st;
    ERR_clear_error();
    return -1;
}

/* A failed certificate check, in words that say what to fix. */
static int verify_fail(redlock__conn *c, long v)
{
    const char *name = c->tls_name;
    switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return set_fail(c, REDLOCK_TLS,
                        "TLS: the server's certificate is from an unknown CA "
                        "(%s): set tls_cacert to the CA that signed it",
                        X509_verify_cert_error_string(v));
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return set_fail(c, REDLOCK_TLS,
                        "TLS: the server's certificate is not for \"%.100s\" "
                        "(set tls_sni to a name it carries)", name);
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return set_fail(c, REDLOCK_TLS,
                        "TLS: the server's certificate has expired");
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return set_fail(c, REDLOCK_TLS,
                        "TLS: the server's certificate is not yet valid "
                        "(check the clocks)");
    default:
        return set_fail(c, REDLOCK_TLS,
                        "TLS: the server's certificate was refused: %s",
                        X509_verify_cert_error_string(v));
    }
}

/* An SSL call failed with err (SSL_get_error): set c->fail.  During the
 * handshake or right after it (the first read: TLS 1.3 servers judge our
 * certificate after we consider the handshake done). */
static int ssl_fail(redlock__conn *c, int err, const char *during)
{
    char why[200];
    int reason = ssl_reason(why, sizeof why);
    int fresh = !c->tls_data; /* no application data read yet */
    long v = SSL_get_verify_result(c->ssl);
    if (c->handshaking && v != X509_V_OK)
        return verify_fail(c, v);
    if (c->rx > 0 && !c->tls_data && (c->tls_first < 0x14 || c->tls_first > 0x17))
        return set_fail(c, REDLOCK_TLS,
                        "TLS: the server does not speak TLS on this port "
                        "(it answered with non-TLS bytes): use redis://");
    switch (reason) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return set_fail(c, REDLOCK_TLS,
                        "TLS: the server wants a client certificate: set "
                        "tls_cert and tls_key");
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
        return set_fail(c, REDLOCK_TLS,
                        "TLS: the server refused our client certificate "
                        "(%s)", why);
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_UNEXPECTED_RECORD:
        if (fresh)
            return set_fail(c, REDLOCK_TLS,
                            "TLS: the server does not speak TLS on this port "
                            "(%s): use redis://", why);
        break;
    default:
        break;
    }
    if (fresh && c->tls_cert_wanted &&
        (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN ||
         err == SSL_ERROR_SSL))
        return set_fail(c, REDLOCK_TLS,
                        "TLS: the server wants a client certificate: set "
                        "tls_cert and tls_key");
    if (err == SSL_ERROR_SSL && reason != 0 && c->handshaking)
        return set_fail(c, REDLOCK_TLS, "TLS handshake failed: %s", why);
    if (err == SSL_ERROR_SYSCALL && c->tls_errno)
        return set_fail(c, REDLOCK_IO, "%s failed: %s", during,
                        strerror(c->tls_errno));
    if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN)
        return set_fail(c, REDLOCK_IO, "connection closed by the server%s",
                        c->handshaking ? " during the TLS handshake" : "");
    return set_fail(c, REDLOCK_IO, "%s failed: %s", during, why);
}

/* What an SSL call that returned r <= 0 waits for: POLLIN or POLLOUT, or
 * 0 after a failure (c->fail set). */
static short want(redlock__conn *c, int r, const char *during)
{
    int err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ)
        return POLLIN;
    if (err == SSL_ERROR_WANT_WRITE)
        return POLLOUT;
    ssl_fail(c, err, during);
    return 0;
}

int redlock__tls_handshake(redlock__conn *c)
{
    c->tls_errno = 0;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->handshaking = 0;
        c->tls_events = 0;
        atomic_fetch_add(&c->node->tls_handshakes, 1);
        if (SSL_session_reused(c->ssl))
            atomic_fetch_add(&c->node->tls_resumed, 1);
        return 0;
    }
    c->tls_events = want(c, r, "TLS handshake");
    return c->tls_events ? 1 : -1;
}

/* Our first write failed (reset): a TLS 1.3 server that refused our
 * certificate sent its alert just before closing, and the alert is still
 * in the socket's buffer.  Read it, for the message that says why. */
static void alert_after_write(redlock__conn *c)
{
    redlock_status st = c->fail_st;
    char fail[sizeof c->fail];
    memcpy(fail, c->fail, sizeof fail);
    char buf[512];
    if (redlock__tls_read(c, buf, sizeof buf) < 0 && c->fail_st == REDLOCK_TLS)
        return;
    c->fail_st = st;
    memcpy(c->fail, fail, sizeof fail);
}

int redlock__tls_write(redlock__conn *c)
{
    while (c->sent < c->out.len) {
        size_t left = c->out.len - c->sent;
        c->tls_errno = 0;
        ERR_clear_error();
        int w = SSL_write(c->ssl, c->out.data + c->sent,
                          left > 65536 ? 65536 : (int)left);
        if (w > 0) {
            c->sent += (size_t)w;
            continue;
        }
        c->tls_events = want(c, w, "write");
        if (!c->tls_events && !c->tls_data)
            alert_after_write(c);
        return c->tls_events ? 0 : -1;
    }
    c->tls_events = 0;
    return 0;
}

int redlock__tls_read(redlock__conn *c, char *buf, size_t len)
{
    c->tls_errno = 0;
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf, len > 65536 ? 65536 : (int)len);
    if (r > 0) {
        c->tls_data = 1;
        return r;
    }
    short ev = want(c, r, "read");
    if (ev == POLLOUT)
        c->tls_events = POLLOUT; /* a read that must write first */
    else if (c->sent == c->out.len)
        c->tls_events = 0; /* nothing to write: never wait for POLLOUT */
    return ev ? 0 : -1;
}

int redlock__tls_pending(const redlock__conn *c)
{
    return c->ssl && SSL_has_pending(c->ssl);
}

#else /* !REDLOCK_WITH_TLS: node.c refuses TLS URLs before any of this */

redlock_status redlock__tls_ctx_new(const redlock_options *o, int need,
                                    struct ssl_ctx_st **out)
{
    *out = NULL;
    (void)need;
    return check_options(o);
}

void redlock__tls_ctx_free(struct ssl_ctx_st *ctx)
{
    (void)ctx;
}

void redlock__tls_node_clear(redlock__node *n)
{
    (void)n;
}

redlock_status redlock__tls_start(redlock__node *n, redlock__conn *c,
                                  const char *host)
{
    (void)n;
    (void)c;
    (void)host;
    return redlock__fail(REDLOCK_INVALID, "TLS is not in this build");
}

void redlock__tls_free(redlock__conn *c)
{
    (void)c;
}

int redlock__tls_handshake(redlock__conn *c)
{
    (void)c;
    return -1;
}

int redlock__tls_write(redlock__conn *c)
{
    (void)c;
    return -1;
}

int redlock__tls_read(redlock__conn *c, char *buf, size_t len)
{
    (void)c;
    (void)buf;
    (void)len;
    return -1;
}

int redlock__tls_pending(const redlock__conn *c)
{
    (void)c;
    return 0;
}

#endif
