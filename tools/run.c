/*
 * redlock run: the supervisor.
 *
 * `run` keeps the lock alive with the library's watchdog thread and learns
 * of a loss through on_lost, which only writes one record to a self-pipe.
 * Signal handlers write to the same pipe, so the main thread sleeps in one
 * poll() and does everything else (forwarding, reaping, escalating to
 * SIGKILL) itself: no work in handlers.  In a terminal, redlock follows
 * COMMAND's stops, as a shell would (follow_stop).
 *
 * The job is COMMAND's process group (its id is COMMAND's pid), and the
 * lock is released only once the whole group has ended:
 *  - SIGINT, SIGTERM, SIGHUP, SIGQUIT and a lost lock's SIGTERM go to the
 *    group, and SIGKILL after GRACE if it has not ended; SIGUSR1/2 go to
 *    COMMAND alone.
 *  - COMMAND's exit is noted but COMMAND is not reaped until the end: its
 *    zombie keeps its pid, and so the group's id, from reuse, so that a
 *    signal to the group never reaches a stranger's.  Processes of the
 *    group still running then get SIGTERM (SIGKILL after GRACE), and
 *    redlock waits for them, looking at /proc (they are not all its
 *    children).
 *  - redlock is a child subreaper: the job's orphans become its children,
 *    and it reaps them.
 * Processes that leave the group (setsid, setpgid) are not the job's.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Written by signal handlers and by on_lost (watchdog thread); read by the
 * main loop.  Set before either can run, never changed while they can. */
static int wake_fd[2] = {-1, -1};

/* One event on the pipe.  A record is far below PIPE_BUF, so every write
 * is atomic and a read never splits one. */
typedef struct event {
    int sig;       /* the signal, or EV_LOST */
    pid_t sender;  /* who sent it (0: the kernel, as for a terminal's ^C) */
    int64_t at_ms; /* when it arrived */
} event;
#define EV_LOST 0

/* One signal from one sender twice within this is one signal: timeout(1)
 * sends its signal to redlock and then to redlock's process group, which
 * reaches redlock again (and not COMMAND, which has a group of its own).
 * The kernel already merges the two when they come before the handler
 * runs; this makes it so when they do not. */
#define DUP_WINDOW_MS 100

/* Set by SIGCONT: after stopping itself, redlock learns whether it was
 * really stopped and continued (a stop signal to an orphaned process group
 * is discarded). */
static volatile sig_atomic_t continued;

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    int saved = errno;
    if (sig == SIGCONT) {
        continued = 1;
        errno = saved;
        return;
    }
    event ev;
    memset(&ev, 0, sizeof ev);
    ev.sig = sig;
    if (si && (si->si_code == SI_USER || si->si_code == SI_QUEUE))
        ev.sender = si->si_pid;
    ev.at_ms = cli_now_ms(); /* clock_gettime() is async-signal-safe */
    if (write(wake_fd[1], &ev, sizeof ev) < 0) {
        /* full pipe: the loop is awake anyway */
    }
    errno = saved;
}

void cli_on_lost(const redlock_lock *lock, void *arg)
{
    (void)lock;
    (void)arg;
    event ev;
    memset(&ev, 0, sizeof ev);
    ev.sig = EV_LOST;
    if (write(wake_fd[1], &ev, sizeof ev) < 0) {
        /* nothing to do: the loop also checks redlock_held() */
    }
}

int cli_run_init(void)
{
    if (pipe(wake_fd) != 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        int fl = fcntl(wake_fd[k], F_GETFL);
        if (fl < 0 || fcntl(wake_fd[k], F_SETFL, fl | O_NONBLOCK) < 0 ||
            fcntl(wake_fd[k], F_SETFD, FD_CLOEXEC) < 0)
            return -1;
    }
    return 0;
}

void cli_run_cleanup(void)
{
    for (int k = 0; k < 2; k++)
        if (wake_fd[k] >= 0) {
            close(wake_fd[k]);
            wake_fd[k] = -1;
        }
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define NFORWARDED (sizeof forwarded / sizeof forwarded[0])

typedef struct run_state {
    pid_t pid;            /* COMMAND; also the id of its process group, the job */
    int status;           /* COMMAND's wait status, once reaped */
    int exited;           /* COMMAND has exited: a zombie until the job is over */
    int code;             /* ... with this status (as redlock would exit) */
    int left;             /* processes of the group found after COMMAND's exit */
    int lost;             /* known lost: the job was told */
    int termed;           /* the job has had SIGTERM (lost, forwarded, leftovers) */
    int dying;            /* a grace is running: SIGKILL at kill_at_ms */
    int64_t kill_at_ms;
    int killed;           /* SIGKILL sent to the job */
    int64_t valid_end_ms; /* last observed end of validity, for "renewed" */
    int tty;              /* the controlling terminal, or -1 */
    int last_sig;         /* the last signal forwarded, its sender and time */
    pid_t last_sender;
    int64_t last_at_ms;
} run_state;

/*
 * COMMAND's environment: redlock's, with what COMMAND holds, as etcdctl
 * lock (ETCD_LOCK_KEY, ETCD_LOCK_REV) and consul lock (CONSUL_LOCK_HELD)
 * tell theirs: REDLOCK_KEY, REDLOCK_TOKEN and, with --fence, REDLOCK_FENCE;
 * with -n, REDLOCK_KEY is the slot's key and REDLOCK_SLOT its number.
 * Any of the four in redlock's own environment (an outer redlock's) is
 * left out, so that a stale REDLOCK_FENCE is never mistaken for ours.  Made
 * before fork(): the child may not allocate.
 */
typedef struct command_env {
    char **envp;
    char *var[4];
} command_env;
#define NVARS 4

static void env_free(command_env *ce)
{
    free(ce->envp);
    for (size_t k = 0; k < NVARS; k++)
        free(ce->var[k]);
    memset(ce, 0, sizeof *ce);
}

static char *env_var(const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);
    char *s = malloc(n + v + 2);
    if (s) {
        memcpy(s, name, n);
        s[n] = '=';
        memcpy(s + n + 1, value, v + 1);
    }
    return s;
}

static int ours(const char *entry)
{
    static const char *const names[NVARS] = {"REDLOCK_KEY=", "REDLOCK_TOKEN=",
                                             "REDLOCK_FENCE=", "REDLOCK_SLOT="};
    for (size_t k = 0; k < NVARS; k++)
        if (strncmp(entry, names[k], strlen(names[k])) == 0)
            return 1;
    return 0;
}

/* The number of the slot a permit holds: its key is "<key>:redlock:<i>"
 * (for n = 1, key itself: slot 0). */
static long slot_of(const char *key, const char *slot)
{
    size_t n = strlen(key);
    const char *tail = slot + n;
    if (strncmp(slot, key, n) != 0 || strncmp(tail, ":redlock:", 9) != 0)
        return 0;
    return strtol(tail + 9, NULL, 10);
}

/* Returns 0, or -1 when out of memory. */
static int make_env(command_env *ce, const redlock_lock *lock, const cli_args *a)
{
    memset(ce, 0, sizeof *ce);
    char num[32], slot[32];
    snprintf(num, sizeof num, "%" PRId64, redlock_fence(lock));
    snprintf(slot, sizeof slot, "%ld", slot_of(a->pos[0], redlock_key(lock)));
    if (!(ce->var[0] = env_var("REDLOCK_KEY", redlock_key(lock))) ||
        !(ce->var[1] = env_var("REDLOCK_TOKEN", redlock_token(lock))) ||
        (a->fence && !(ce->var[2] = env_var("REDLOCK_FENCE", num))) ||
        (a->holders > 0 && !(ce->var[3] = env_var("REDLOCK_SLOT", slot))))
        return -1;
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    if (!(ce->envp = calloc(n + NVARS + 1, sizeof *ce->envp)))
        return -1;
    size_t m = 0;
    for (char **e = environ; e && *e; e++)
        if (!ours(*e))
            ce->envp[m++] = *e;
    for (size_t k = 0; k < NVARS; k++)
        if (ce->var[k])
            ce->envp[m++] = ce->var[k];
    ce->envp[m] = NULL;
    return 0;
}

static int status_of_child(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return XS_OSERR;
}

/* Why the lock is gone, as far as Redis tells (one bounded round trip). */
static void describe_loss(redlock_client *c, const char *key, const char *ours,
                          char *why, size_t len)
{
    char holder[512]; /* room for any token of redlock's, holder_info's too */
    int64_t pttl = 0;
    redlock_status st = redlock_inspect(c, key, holder, sizeof holder, &pttl);
    if (st == REDLOCK_OK && strcmp(holder, ours) != 0)
        snprintf(why, len, "another owner's value replaced ours");
    else if (st == REDLOCK_OK)
        snprintf(why, len, "renewals did not get through in time");
    else if (st == REDLOCK_NOT_HELD)
        snprintf(why, len, "the key was deleted or expired");
    else if (st == REDLOCK_INVALID) /* a holder's value longer than holder[] */
        snprintf(why, len, "another owner's value replaced ours");
    else
        snprintf(why, len, "renewals failed: %s", redlock_strerror(st));
}

/*
 * Signal the job: COMMAND's process group.  COMMAND is reaped only once
 * the job is over: until then its pid, running or a zombie, cannot be
 * reused, and neither can the group's id, so the signal reaches the job
 * and never a stranger's group.  COMMAND itself too, while it runs, if it
 * moved to another group.
 */
static void signal_job(const run_state *rs, int sig)
{
    kill(-rs->pid, sig);
    if (!rs->exited && getpgid(rs->pid) != rs->pid)
        kill(rs->pid, sig);
}

/* SIGKILL to the job grace_ms from now, unless due sooner already. */
static void start_grace(run_state *rs, const cli_args *a)
{
    int64_t at = cli_now_ms() + a->grace_ms;
    if (!rs->dying || at < rs->kill_at_ms)
        rs->kill_at_ms = at;
    rs->dying = 1;
}

/* SIGTERM to the job, and SIGCONT: a stopped process acts on SIGTERM only
 * once continued.  Once: the job has had one already otherwise. */
static void terminate_job(run_state *rs, const cli_args *a)
{
    if (!rs->termed) {
        signal_job(rs, SIGTERM);
        signal_job(rs, SIGCONT);
        rs->termed = 1;
    }
    start_grace(rs, a);
}

static void lose(run_state *rs, const cli_args *a, redlock_client *c,
                 redlock_lock *lock)
{
    if (rs->lost)
        return;
    rs->lost = 1;
    /* The job first: it must stop working on what is no longer ours. */
    int had_term = rs->termed;
    terminate_job(rs, a);
    int64_t left = rs->kill_at_ms - cli_now_ms();
    if (left < 0)
        left = 0;
    const char *key = redlock_key(lock); /* with -n, the slot's */
    char why[160];
    describe_loss(c, key, redlock_token(lock), why, sizeof why);
    cli_note("lost \"%s\": %s", key, why);
    if (!had_term)
        cli_note("sent SIGTERM to COMMAND's process group (pgid %ld)", (long)rs->pid);
    cli_err("lost the lock \"%s\" while %s ran (%s): %s COMMAND's process group "
            "(pgid %ld), SIGKILL in %" PRId64 "ms if it has not ended",
            key, rs->exited ? "processes COMMAND left" : "COMMAND", why,
            had_term ? "SIGTERM had reached" : "sent SIGTERM to", (long)rs->pid,
            left);
}

/*
 * COMMAND was stopped by sig.  In a terminal, a job is what the shell
 * sees: redlock.  So when COMMAND stops for the terminal (^Z, or reading
 * it from the background), redlock takes the terminal back and stops
 * itself with the same signal, for the shell to report; once continued
 * (fg, bg), it gives the terminal back if it is in the foreground and
 * continues COMMAND.  A COMMAND stopped for another reason (SIGSTOP, a
 * debugger) is left to whoever stopped it.
 */
static void follow_stop(run_state *rs, int sig)
{
    if (rs->tty < 0 || (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)) {
        cli_note("COMMAND (pid %ld) was stopped by signal %d", (long)rs->pid, sig);
        return;
    }
    pid_t fg = tcgetpgrp(rs->tty);
    if (sig != SIGTSTP && fg == getpgrp()) {
        /* redlock is in the foreground (fg after a start in the
         * background): the terminal is COMMAND's to use. */
        cli_give_tty(rs->tty, rs->pid);
        kill(-rs->pid, SIGCONT);
        cli_note("gave the terminal to COMMAND (pid %ld)", (long)rs->pid);
        return;
    }
    if (fg == rs->pid)
        cli_give_tty(rs->tty, getpgrp());
    cli_note("COMMAND (pid %ld) was stopped by signal %d: stopping too", (long)rs->pid,
             sig);
    continued = 0;
    kill(getpid(), sig);
    if (!continued) {
        /* The stop was discarded (an orphaned process group): continuing
         * COMMAND would only stop it again. */
        cli_note("could not stop: COMMAND (pid %ld) stays stopped", (long)rs->pid);
        return;
    }
    if (tcgetpgrp(rs->tty) == getpgrp())
        cli_give_tty(rs->tty, rs->pid);
    kill(-rs->pid, SIGCONT);
    cli_note("continued COMMAND (pid %ld)", (long)rs->pid);
}

/* Forward what the handlers saw. */
static void forward_events(run_state *rs, const cli_args *a)
{
    event ev[32];
    ssize_t nb;
    while ((nb = read(wake_fd[0], ev, sizeof ev)) > 0) {
        for (size_t k = 0; k < (size_t)nb / sizeof ev[0]; k++) {
            int sig = ev[k].sig;
            if (sig == EV_LOST || sig == SIGCHLD)
                continue; /* looked at by the loop */
            if (sig == rs->last_sig && ev[k].sender == rs->last_sender &&
                ev[k].at_ms - rs->last_at_ms < DUP_WINDOW_MS) {
                cli_note("got %s again from pid %ld: forwarded once", cli_signame(sig),
                         (long)ev[k].sender);
                continue;
            }
            rs->last_sig = sig;
            rs->last_sender = ev[k].sender;
            rs->last_at_ms = ev[k].at_ms;
            /* COMMAND and its group are in a group of their own, so
             * nothing sent to redlock or its group (a terminal's ^C
             * included) has reached them: this is their only copy. */
            if (sig == SIGUSR1 || sig == SIGUSR2) {
                /* No request to end: COMMAND's alone, as it always was. */
                if (rs->exited) {
                    cli_note("got %s: not forwarded, COMMAND (pid %ld) has exited",
                             cli_signame(sig), (long)rs->pid);
                    continue;
                }
                kill(rs->pid, sig);
                cli_note("forwarded %s to COMMAND (pid %ld)", cli_signame(sig),
                         (long)rs->pid);
                continue;
            }
            /* SIGINT, SIGTERM, SIGHUP, SIGQUIT: the whole job is asked to
             * end, and killed if it has not after GRACE. */
            signal_job(rs, sig);
            if (sig == SIGTERM)
                rs->termed = 1;
            start_grace(rs, a);
            int64_t left = rs->kill_at_ms - cli_now_ms();
            cli_note("forwarded %s to COMMAND's process group (pgid %ld): SIGKILL in "
                     "%" PRId64 "ms if it has not ended",
                     cli_signame(sig), (long)rs->pid, left < 0 ? 0 : left);
        }
    }
}

/* One process's state, parent and process group, from /proc/PID/stat.
 * Returns 0, or -1 if it is gone or unreadable. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf - 1)) < 0 && errno == EINTR) {
    }
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "pid (comm) S ppid pgrp ...": comm may hold anything, ')' too */
    char *paren = strrchr(buf, ')');
    long pp, pg;
    if (!paren || sscanf(paren + 1, " %c %ld %ld", state, &pp, &pg) != 3)
        return -1;
    *ppid = (pid_t)pp;
    *pgrp = (pid_t)pg;
    return 0;
}

/*
 * After COMMAND's exit: how many processes of its group still run (zombies
 * are over), by /proc, or -1 if /proc cannot be read.  Our children that
 * have ended on the way (descendants of COMMAND's that came to us, the
 * subreaper, when their parent died) are reaped, COMMAND excepted.
 */
static int scan_group(const run_state *rs)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    pid_t self = getpid();
    int live = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end != '\0' || v <= 0 || (pid_t)v == rs->pid || (pid_t)v == self)
            continue;
        char state;
        pid_t ppid, pgrp;
        if (proc_stat((pid_t)v, &state, &ppid, &pgrp) != 0)
            continue;
        int over = state == 'Z' || state == 'X' || state == 'x';
        if (over && ppid == self) {
            /* our child and a zombie: its pid is not reused until reaped */
            while (waitpid((pid_t)v, NULL, WNOHANG) < 0 && errno == EINTR) {
            }
        } else if (!over && pgrp == rs->pid) {
            live++;
        }
    }
    closedir(d);
    return live;
}

/*
 * Reap our children that have ended (orphans of the job that came to us,
 * the subreaper), and note COMMAND's exit without reaping it: its zombie
 * keeps the group's id ours until the job is over.  Returns 0, or -1 on a
 * system error.
 */
static int reap_children(run_state *rs)
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
            if (errno == EINTR)
                continue;
            return -1; /* ECHILD too: COMMAND is not reaped yet */
        }
        if (si.si_pid == 0)
            return 0;
        if (si.si_pid == rs->pid) {
            rs->exited = 1;
            if (si.si_code == CLD_EXITED) {
                rs->code = si.si_status;
                cli_note("COMMAND (pid %ld) exited with status %d", (long)rs->pid,
                         rs->code);
            } else {
                rs->code = 128 + si.si_status;
                cli_note("COMMAND (pid %ld) was killed by signal %d: status %d",
                         (long)rs->pid, si.si_status, rs->code);
            }
            return 0; /* the others wait for scan_group() */
        }
        while (waitpid(si.si_pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
}

/* Forward signals, watch the lock, reap COMMAND and the rest of its group.
 * Returns 0 once COMMAND's process group has ended and COMMAND has been
 * reaped (its wait status in rs->status), -1 on a system error (the group
 * then killed and COMMAND reaped). */
static int supervise(run_state *rs, const cli_args *a, redlock_client *c,
                     redlock_lock *lock)
{
    const char *key = redlock_key(lock);
    /* Wake at least this often to watch the validity (renewals come every
     * ttl/3): between 100 ms and 1 s. */
    int64_t tick = a->ttl_ms / 6;
    if (tick < 100)
        tick = 100;
    if (tick > 1000)
        tick = 1000;
    /* After COMMAND's exit, what is left of its group ends unseen (those
     * are not all our children): look this often, from 10 ms to 200 ms. */
    int64_t scan_every = 10;
    rs->valid_end_ms = cli_now_ms() + redlock_validity_ms(lock);

    for (;;) {
        int64_t timeout = tick;
        if (rs->exited && scan_every < timeout)
            timeout = scan_every;
        if (rs->dying && !rs->killed) {
            int64_t left = rs->kill_at_ms - cli_now_ms();
            if (left < timeout)
                timeout = left < 0 ? 0 : left;
        }
        struct pollfd pfd = {.fd = wake_fd[0], .events = POLLIN};
        if (poll(&pfd, 1, (int)timeout) < 0 && errno != EINTR) {
            cli_err("run: poll: %s: killing COMMAND's process group (pgid %ld)",
                    strerror(errno), (long)rs->pid);
            break;
        }
        forward_events(rs, a);
        if (!rs->exited) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            /* stops only: this never reaps */
            if (waitid(P_PID, (id_t)rs->pid, &si, WSTOPPED | WNOHANG) == 0 &&
                si.si_pid == rs->pid && si.si_code == CLD_STOPPED)
                follow_stop(rs, si.si_status);
            if (reap_children(rs) != 0) {
                cli_err("run: waiting for COMMAND (pid %ld): %s", (long)rs->pid,
                        strerror(errno));
                break;
            }
            if (rs->exited) {
                /* The job is over for the shell: the terminal comes back
                 * to redlock's group, where the shell expects it. */
                if (rs->tty >= 0 && tcgetpgrp(rs->tty) == rs->pid)
                    cli_give_tty(rs->tty, getpgrp());
            }
        }
        if (rs->exited) {
            int n = scan_group(rs);
            if (n <= 0) {
                if (rs->left)
                    cli_note("COMMAND's process group (pgid %ld) has ended",
                             (long)rs->pid);
                break; /* -1: /proc unreadable, the sweep below ends it */
            }
            if (!rs->left) {
                /* A shell script's background children, say: the job
                 * is not over while they run, and they run under the
                 * lock or not at all. */
                rs->left = n;
                int had_term = rs->termed;
                terminate_job(rs, a);
                int64_t left = rs->kill_at_ms - cli_now_ms();
                cli_note("%d process%s of COMMAND's process group (pgid %ld) still "
                         "run%s: %s, SIGKILL in %" PRId64 "ms if it has not ended",
                         n, n == 1 ? "" : "es", (long)rs->pid, n == 1 ? "s" : "",
                         had_term ? "SIGTERM had reached them" : "sent SIGTERM",
                         left < 0 ? 0 : left);
            }
            if (scan_every < 200)
                scan_every *= 2;
        }
        if (!rs->lost) {
            int64_t v = redlock_validity_ms(lock);
            if (!redlock_held(lock) || v <= 0) {
                lose(rs, a, c, lock);
            } else {
                int64_t end = cli_now_ms() + v;
                if (end > rs->valid_end_ms + 5) {
                    cli_note("renewed \"%s\", valid %" PRId64 "ms", key, v);
                    rs->valid_end_ms = end;
                }
            }
        }
        if (rs->dying && !rs->killed && cli_now_ms() >= rs->kill_at_ms) {
            rs->killed = 1;
            signal_job(rs, SIGKILL);
            cli_note("sent SIGKILL to COMMAND's process group (pgid %ld) after the %"
                     PRId64 "ms grace", (long)rs->pid, a->grace_ms);
        }
    }

    /* The group is over; a process that a scan missed (forked while the
     * scan ran) is not: one SIGKILL to the group, atomic with any fork in
     * it, while COMMAND's zombie still holds the group's id.  Nothing if
     * the group is empty.  Then COMMAND is reaped, and its id let go. */
    int ok = rs->exited;
    signal_job(rs, SIGKILL);
    while (waitpid(rs->pid, &rs->status, 0) < 0 && errno == EINTR) {
    }
    (void)scan_group(rs); /* reap what the SIGKILL ended, if ours */
    return ok ? 0 : -1;
}

int cli_run(const cli_args *a, redlock_client *c)
{
    const char *key = a->pos[0];
    redlock_lock *lock = NULL;
    cli_note("acquiring \"%s\" (ttl %" PRId64 "ms, wait %" PRId64 "ms)", key,
             a->ttl_ms, a->wait_ms);
    redlock_status st =
        a->holders > 0
            ? redlock_acquire_n(c, key, a->holders, a->ttl_ms, a->wait_ms, &lock)
            : redlock_acquire(c, key, a->ttl_ms, a->wait_ms, &lock);
    if (st == REDLOCK_BUSY) {
        /* Not an error: another host runs the job (like flock -n). */
        if (a->holders > 1)
            cli_note("busy: all %d slots of \"%s\" are held elsewhere, exiting %d",
                     a->holders, key, a->busy_code);
        else
            cli_note("busy: \"%s\" is held elsewhere, exiting %d", key, a->busy_code);
        return a->busy_code;
    }
    if (st != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "run: cannot acquire \"%.200s\"", key);
        cli_err_status(what, st);
        return cli_exit_code(st, a->busy_code);
    }
    /* With -n, the slot's key is what is held, and what messages name: a
     * copy, since the release frees the handle and its key. */
    char *held = strdup(redlock_key(lock));
    if (held)
        key = held;
    if (a->fence)
        cli_note("acquired \"%s\" token %s fence %" PRId64 " ttl %" PRId64
                 "ms, valid %" PRId64 "ms", key, redlock_token(lock),
                 redlock_fence(lock), a->ttl_ms, redlock_validity_ms(lock));
    else
        cli_note("acquired \"%s\" token %s ttl %" PRId64 "ms, valid %" PRId64 "ms",
                 key, redlock_token(lock), a->ttl_ms, redlock_validity_ms(lock));
    if ((st = redlock_keepalive(lock)) != REDLOCK_OK) {
        char what[256];
        snprintf(what, sizeof what, "run: cannot keep \"%.200s\" alive", key);
        cli_err_status(what, st);
        redlock_release(lock);
        free(held);
        return st == REDLOCK_NOT_HELD ? XS_LOST : cli_exit_code(st, a->busy_code);
    }

    /* Block what we handle until the loop runs; install the handlers. */
    sigset_t handled, orig_mask;
    sigemptyset(&handled);
    sigaddset(&handled, SIGCHLD);
    sigaddset(&handled, SIGCONT);
    for (size_t k = 0; k < NFORWARDED; k++)
        sigaddset(&handled, forwarded[k]);
    sigprocmask(SIG_BLOCK, &handled, &orig_mask);

    struct sigaction sa, old[NFORWARDED], old_chld, old_cont;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigset_t sigdef;
    sigemptyset(&sigdef);
    for (size_t k = 0; k < NFORWARDED; k++) {
        sigaction(forwarded[k], NULL, &old[k]);
        /* Ignored when we started (nohup, a background job of sh): leave
         * it ignored, for COMMAND too. */
        if (old[k].sa_handler == SIG_IGN)
            continue;
        sigaction(forwarded[k], &sa, NULL);
        sigaddset(&sigdef, forwarded[k]);
    }
    /* Stops too (no SA_NOCLDSTOP): a COMMAND stopped by the terminal
     * stops redlock (follow_stop). */
    sigaction(SIGCHLD, &sa, &old_chld);
    sigaddset(&sigdef, SIGCHLD);
    sigaction(SIGCONT, &sa, &old_cont);
    sigaddset(&sigdef, SIGCONT);
    if (!cli_sigpipe_was_ignored)
        sigaddset(&sigdef, SIGPIPE); /* redlock ignores it, COMMAND not */

    run_state rs;
    memset(&rs, 0, sizeof rs);
    /* In the terminal's foreground, COMMAND (in its own group) gets the
     * foreground, as a shell gives it to a job: ^C and ^Z then reach it
     * once, from the terminal, and it may read the terminal. */
    rs.tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    int take_tty = rs.tty >= 0 && tcgetpgrp(rs.tty) == getpgrp();
    /* The job's orphans (a shell script's background children, once the
     * script has exited) come to redlock, which reaps them, not to init:
     * see scan_group().  Without it (Linux before 3.4) they are still
     * signalled and waited for, as members of the group. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        cli_note("run: cannot become a child subreaper: %s", strerror(errno));
    command_env env;
    int rc = make_env(&env, lock, a) != 0
                 ? ENOMEM
                 : cli_start_command(a->command, env.envp, &orig_mask, &sigdef, rs.tty,
                                     take_tty, &rs.pid);
    env_free(&env);
    int result;
    if (rc != 0) {
        cli_err("run: cannot execute \"%s\": %s", a->command[0], strerror(rc));
        result = rc == ENOENT ? XS_NOT_FOUND
                 : (rc == EACCES || rc == ENOEXEC || rc == EPERM || rc == EISDIR)
                     ? XS_CANNOT_EXEC
                     : XS_OSERR;
        st = redlock_release(lock);
        cli_note("released \"%s\": %s", key, redlock_strerror(st));
    } else {
        cli_note("started COMMAND \"%s\" (pid %ld%s)", a->command[0], (long)rs.pid,
                 take_tty ? ", in the terminal's foreground" : "");
        sigprocmask(SIG_SETMASK, &orig_mask, NULL);
        /* Only now is the lock let go: no process of the group outlives
         * it (those that left the group are not the job's). */
        result = supervise(&rs, a, c, lock) == 0 ? status_of_child(rs.status) : XS_OSERR;
        /* The terminal comes back to redlock's group, where the shell
         * expects it (supervise() did so at COMMAND's exit). */
        if (rs.tty >= 0 && tcgetpgrp(rs.tty) == rs.pid)
            cli_give_tty(rs.tty, getpgrp());
        if (rs.lost) {
            /* Token-checked: deletes nothing of another owner's. */
            redlock_release(lock);
            result = XS_LOST;
        } else if ((st = redlock_release(lock)) == REDLOCK_OK) {
            cli_note("released \"%s\"", key);
        } else if (st == REDLOCK_NOT_HELD) {
            cli_err("run: the lock \"%s\" was lost before COMMAND ended (%s)", key,
                    redlock_last_error());
            cli_note("lost \"%s\"", key);
            result = XS_LOST;
        } else {
            /* COMMAND ran under the lock; the key expires by itself. */
            char what[320];
            snprintf(what, sizeof what,
                     "run: cannot release \"%.200s\" (it expires within %" PRId64
                     "ms)", key, a->ttl_ms);
            cli_err_status(what, st);
        }
    }
    if (rs.tty >= 0)
        close(rs.tty);

    for (size_t k = 0; k < NFORWARDED; k++)
        sigaction(forwarded[k], &old[k], NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    sigaction(SIGCONT, &old_cont, NULL);
    sigprocmask(SIG_SETMASK, &orig_mask, NULL);
    free(held);
    return result;
}
