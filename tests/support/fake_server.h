/*
 * Test helper: a fake Redis on 127.0.0.1 that answers every command with
 * bytes chosen by the test, for what no real redis-server does on demand:
 * replies of the wrong type, garbage, a reply that never comes, one cut
 * off by a close, or one that never ends.
 *
 *     fs_server *fs = fs_start();
 *     fs_set(fs, my_handler, &my_state);   // or NULL: answer like Redis
 *     ... redlock_connect((const char *[]){fs_url(fs)}, 1, &o, &st) ...
 *     fs_stop(fs);
 *
 * One thread serves every connection with poll(), so a stalled or
 * flooding connection never holds up another.  Commands are read as RESP
 * arrays of bulk strings (what libredlock sends) and numbered in arrival
 * order across all connections.  For each one the handler gets the
 * command, classified (fs_kind), and a reply already filled with what a
 * healthy Redis 7 would answer to libredlock (fs_default()); it may
 * replace the bytes and choose what happens next (fs_action).
 *
 * SCRIPT LOAD is answered with the script's real SHA1, and EVALSHA is
 * mapped back to the script's body (fs_command.script) so that a handler
 * can tell release from extend without knowing libredlock's internals.
 *
 * Thread-safety: the handler runs on the server's thread, with the
 * server's mutex held; fs_set(), fs_count() and friends take that mutex,
 * so a test may read state its handler wrote once fs_count() or fs_set()
 * has returned.
 */
#ifndef REDLOCK_TEST_FAKE_SERVER_H
#define REDLOCK_TEST_FAKE_SERVER_H

#include <stddef.h>

typedef struct fs_server fs_server;

/* What a command is, as far as libredlock's conversation goes. */
typedef enum fs_kind {
    FS_OTHER,          /* anything else: answered "-ERR unknown command" */
    FS_AUTH,           /* +OK */
    FS_SELECT,         /* +OK */
    FS_PING,           /* +PONG */
    FS_SCRIPT_LOAD,    /* $40 <sha1 of the body> */
    FS_SET,            /* SET key token NX PX ttl: +OK */
    FS_ACQUIRE_SCRIPT, /* the fenced or waiter acquire script: :1 */
    FS_RELEASE,        /* the release script: :1 */
    FS_EXTEND,         /* the extend script: :1 */
    FS_INSPECT,        /* the inspect script: *2 $-1 :-2 (free) */
    FS_TYPE,           /* +none */
    FS_PTTL,           /* :-2 */
    FS_WAIT,           /* :1 (one replica acknowledged) */
    FS_SUBSCRIBE,      /* *3 $9 subscribe $<ch> :1 */
    FS_UNSUBSCRIBE,    /* *3 $11 unsubscribe $<ch> :0 */
    FS_NKINDS
} fs_kind;

/* "SET", "RELEASE", "SCRIPT LOAD"...  for messages. */
const char *fs_kind_name(fs_kind k);

typedef struct fs_command {
    int conn;       /* connection number, from 0 in accept order */
    int index;      /* command number across all connections, from 0 */
    fs_kind kind;
    int nth;        /* how many of this kind came before, from 0 */
    int argc;
    char **argv;    /* each NUL-terminated (binary-safe with argvlen) */
    size_t *argvlen;
    /* EVAL and EVALSHA: the script's body when known (EVALSHA of a script
     * never loaded or EVALed here: NULL); else NULL. */
    const char *script;
} fs_command;

typedef enum fs_action {
    FS_SEND,  /* send the bytes and go on serving the connection */
    FS_CLOSE, /* send the bytes, then close (FIN) */
    FS_RESET, /* send the bytes, then reset the connection (RST) */
    FS_HANG,  /* send the bytes, then never answer on it again (it stays
                 open, what arrives is read and dropped) */
    FS_FLOOD  /* send the bytes, then flood_len bytes of flood over and over
                 until flood_limit bytes in all (then hang), or the peer
                 closes */
} fs_action;

typedef struct fs_reply {
    const char *data; /* sent as is; must stay valid until the handler
                         returns (it is copied then) */
    size_t len;
    fs_action action;
    const char *flood;
    size_t flood_len;
    size_t flood_limit;
    /* 0 < split < len: send data[0..split), pause FS_SPLIT_PAUSE_MS, then
     * the rest (the client sees a reply arrive in two parts). */
    size_t split;
} fs_reply;

#define FS_SPLIT_PAUSE_MS 2

typedef void (*fs_handler)(void *arg, const fs_command *cmd, fs_reply *reply);

/*
 * Listen on 127.0.0.1 on a free port and start serving, answering like
 * Redis (fs_default()) until fs_set() installs a handler.  NULL (with a
 * message on stderr) on failure.
 */
fs_server *fs_start(void);

/* Close every connection, zero the counters and install handler (NULL:
 * fs_default() only) with its argument. */
void fs_set(fs_server *s, fs_handler handler, void *arg);

/* Stop the thread, close everything, free s.  NULL is fine. */
void fs_stop(fs_server *s);

int fs_port(const fs_server *s);
/* "redis://127.0.0.1:<port>" */
const char *fs_url(const fs_server *s);

/* Since the last fs_set(): commands of a kind (FS_NKINDS: of every
 * kind), and connections accepted. */
int fs_count(fs_server *s, fs_kind kind);
int fs_connections(fs_server *s);
/* Since the last fs_set(): 1 if a command of that kind carried an
 * argument equal to arg (for example the key a release deleted). */
int fs_saw_arg(fs_server *s, fs_kind kind, const char *arg);

/* Fill *reply with what a healthy Redis 7 would answer to cmd (see
 * fs_kind), action FS_SEND.  The bytes live in the server until the next
 * command. */
void fs_default(fs_server *s, const fs_command *cmd, fs_reply *reply);

#endif
