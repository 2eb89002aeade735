/*
 * redlock run: starting COMMAND.
 *
 * COMMAND is started with fork() and execve(), because only the child
 * itself can ask the kernel (PR_SET_PDEATHSIG) to kill it when redlock
 * dies: a COMMAND that outlived a killed redlock would run on without the
 * lock once its ttl ended.  The child of this multi-threaded process calls
 * only async-signal-safe functions: PATH is searched, as execvp() would,
 * into names made before fork().  The child gets the signal mask redlock
 * started with and default dispositions for what redlock handles.  Lock
 * sockets and the self-pipes are close-on-exec.
 *
 * COMMAND runs in a process group of its own, so that a signal sent to
 * redlock's group reaches COMMAND once (forwarded), not twice; in the
 * terminal's foreground it gets the terminal, as a shell gives it to a job.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int cli_give_tty(int tty, pid_t pgid)
{
    /* A process outside the foreground that calls tcsetpgrp() gets SIGTTOU
     * (and stops) unless it blocks it. */
    sigset_t ttou, old;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    sigprocmask(SIG_BLOCK, &ttou, &old);
    int rc = tcsetpgrp(tty, pgid);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* The full names execvp() would try for COMMAND, in its order, made before
 * fork(): the child of a multi-threaded process may call only
 * async-signal-safe functions, which malloc() and execvp() are not. */
typedef struct exec_plan {
    char **path;
    size_t n;
} exec_plan;

static void plan_free(exec_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->path[i]);
    free(p->path);
    memset(p, 0, sizeof *p);
}

static int plan_exec(const char *file, exec_plan *p)
{
    memset(p, 0, sizeof *p);
    if (*file == '\0')
        return 0; /* found nowhere: ENOENT, as execvp() says */
    const char *search = strchr(file, '/') ? NULL : getenv("PATH");
    if (!strchr(file, '/') && !search)
        search = "/bin:/usr/bin"; /* execvp()'s default in glibc */
    size_t parts = 1;
    for (const char *s = search; s && *s; s++)
        parts += *s == ':';
    if (!(p->path = calloc(parts, sizeof *p->path)))
        return -1;
    if (!search) {
        if (!(p->path[0] = strdup(file)))
            return -1;
        p->n = 1;
        return 0;
    }
    size_t flen = strlen(file);
    for (const char *s = search;;) {
        size_t len = strcspn(s, ":");
        char *full = malloc(len + flen + 3);
        if (!full)
            return -1;
        if (len == 0) /* an empty PATH entry is the current directory */
            memcpy(full, ".", (len = 1));
        else
            memcpy(full, s, len);
        full[len] = '/';
        memcpy(full + len + 1, file, flen + 1);
        p->path[p->n++] = full;
        s += strcspn(s, ":");
        if (*s == '\0')
            break;
        s++;
    }
    return 0;
}

/* The child, between fork() and exec: async-signal-safe calls only.  Every
 * signal is blocked on entry. */
static void exec_child(const exec_plan *plan, char **argv, char *const *envp,
                       const sigset_t *mask, const sigset_t *sigdef, pid_t parent,
                       int tty, int take_tty, int errfd)
{
    int e = 0;
    /* A group of its own: a signal sent to redlock's process group (kill
     * -TERM -PGID) reaches redlock alone, which passes it on once. */
    if (setpgid(0, 0) != 0)
        e = errno;
    if (e == 0 && take_tty)
        (void)tcsetpgrp(tty, getpid()); /* SIGTTOU is blocked here */
    /* COMMAND lives no longer than redlock: if redlock dies, even by
     * SIGKILL, the kernel kills COMMAND at once, while the lock still holds
     * (it then stays in Redis until its ttl ends).  SIGKILL because a dead
     * redlock could not escalate a SIGTERM that COMMAND ignores.  It fires
     * when the forking thread ends: this is the main thread, which lives
     * as long as redlock. */
    if (e == 0 && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        e = errno;
    /* redlock died before prctl() took effect: nobody holds the lock. */
    if (e == 0 && getppid() != parent)
        _exit(XS_OSERR);
    if (e == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        for (int s = 1; s < 32; s++)
            if (sigismember(sigdef, s) == 1)
                sigaction(s, &dfl, NULL);
        sigprocmask(SIG_SETMASK, mask, NULL);

        /* PATH is searched as execvp() does: on to the next entry after a
         * name that is not there, EACCES if some entry refused. */
        int saw_eacces = 0;
        e = ENOENT;
        for (size_t i = 0; i < plan->n; i++) {
            execve(plan->path[i], argv, envp);
            e = errno;
            if (e == EACCES)
                saw_eacces = 1;
            else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV &&
                     e != ETIMEDOUT)
                break;
        }
        if (saw_eacces && (e == ENOENT || e == ENOTDIR || e == ESTALE ||
                           e == ENODEV || e == ETIMEDOUT))
            e = EACCES;
    }
    if (write(errfd, &e, sizeof e) < 0) {
        /* the parent then sees no error and the exit status 127 */
    }
    _exit(XS_NOT_FOUND);
}

int cli_start_command(char **argv, char *const *envp, const sigset_t *mask,
                      const sigset_t *sigdef, int tty, int take_tty, pid_t *pidp)
{
    exec_plan plan;
    if (plan_exec(argv[0], &plan) != 0) {
        plan_free(&plan);
        return ENOMEM;
    }
    int ep[2];
    if (pipe(ep) != 0) {
        int e = errno;
        plan_free(&plan);
        return e;
    }
    fcntl(ep[0], F_SETFD, FD_CLOEXEC);
    fcntl(ep[1], F_SETFD, FD_CLOEXEC);

    /* Until the child has reset them, no handler of ours may run there
     * (they write to our pipe); and its tcsetpgrp() must not meet
     * SIGTTOU. */
    sigset_t all, before;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &before);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        exec_child(&plan, argv, envp, mask, sigdef, parent, tty, take_tty, ep[1]);
    int e = pid < 0 ? errno : 0;
    if (pid > 0) {
        /* Here too, so that the group and the terminal are COMMAND's
         * whichever of the two runs first (EACCES once it has exec'd: it
         * did so itself). */
        setpgid(pid, pid);
        if (take_tty)
            (void)tcsetpgrp(tty, pid);
    }
    sigprocmask(SIG_SETMASK, &before, NULL);
    close(ep[1]);
    if (pid > 0) {
        int child_errno = 0;
        ssize_t r;
        while ((r = read(ep[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
        }
        if (r == (ssize_t)sizeof child_errno) {
            e = child_errno;
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            if (take_tty)
                cli_give_tty(tty, getpgrp());
        } else {
            *pidp = pid;
        }
    }
    close(ep[0]);
    plan_free(&plan);
    return e;
}
