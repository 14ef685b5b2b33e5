// switchboard-agent-keeper: runs one ACP agent for a Switchboard server and makes
// sure no process of the agent's group outlives the server or the agent.
//
// Usage (by SwitchboardAgentHost only):
//   switchboard-agent-keeper CWD PROGRAM [ARG...]
// Descriptors: 0, 1, 2 are the agent's stdin, stdout and stderr (pipes of the
// server); 3 is the read end of the server's lifeline pipe (the server alone holds
// the write end, so it reads EOF when the server dies, kill -9 included); 4 is the
// status pipe, on which the keeper writes "P <agent pid>\n" once the agent is
// forked and "X <status>\n" or "S <signal>\n" when it ends.
//
// The keeper is started as the leader of a new process group. It ignores SIGTERM
// (a SIGTERM to the group is for the agent; the keeper reacts to its end). When the
// lifeline reads EOF or the agent ends, it SIGKILLs its whole group, itself
// included: the agent's children die with it. PR_SET_PDEATHSIG is not used: it
// follows the spawning thread, not the process, and reaches only one process.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { LIFELINE_FD = 3, STATUS_FD = 4 };

static int sigchld_pipe[2] = {-1, -1};

static void on_sigchld(int signal_number) {
    (void)signal_number;
    int saved = errno;
    char byte = 0;
    ssize_t ignored = write(sigchld_pipe[1], &byte, 1);
    (void)ignored;
    errno = saved;
}

static void report(const char *kind, long value) {
    char line[64];
    int length = snprintf(line, sizeof line, "%s %ld\n", kind, value);
    if (length > 0) {
        ssize_t ignored = write(STATUS_FD, line, (size_t)length);
        (void)ignored;
    }
}

static void kill_group_and_exit(void) {
    kill(0, SIGKILL);
    _exit(125);  // not reached
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "switchboard-agent-keeper: usage: switchboard-agent-keeper CWD PROGRAM [ARG...]\n");
        return 2;
    }
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    if (pipe(sigchld_pipe) != 0) {
        fprintf(stderr, "switchboard-agent-keeper: pipe: %s\n", strerror(errno));
        return 2;
    }
    fcntl(sigchld_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(sigchld_pipe[1], F_SETFD, FD_CLOEXEC);
    fcntl(sigchld_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(sigchld_pipe[1], F_SETFL, O_NONBLOCK);
    fcntl(LIFELINE_FD, F_SETFD, FD_CLOEXEC);
    fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigchld;
    action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &action, NULL);

    pid_t agent = fork();
    if (agent < 0) {
        fprintf(stderr, "switchboard-agent-keeper: fork: %s\n", strerror(errno));
        return 2;
    }
    if (agent == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        if (argv[1][0] != '\0' && chdir(argv[1]) != 0) {
            fprintf(stderr, "switchboard-agent-keeper: cannot enter %s: %s\n", argv[1], strerror(errno));
            _exit(126);
        }
        execvp(argv[2], argv + 2);
        fprintf(stderr, "switchboard-agent-keeper: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    // The keeper keeps no end of the agent's stdio: stdout's EOF is the agent's.
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
        if (null_fd > 2) close(null_fd);
    }
    report("P", (long)agent);

    struct pollfd fds[2] = {
        {.fd = LIFELINE_FD, .events = POLLIN},
        {.fd = sigchld_pipe[0], .events = POLLIN},
    };
    for (;;) {
        int status = 0;
        pid_t ended = waitpid(agent, &status, WNOHANG);
        if (ended == agent) {
            if (WIFEXITED(status)) report("X", WEXITSTATUS(status));
            else if (WIFSIGNALED(status)) report("S", WTERMSIG(status));
            kill_group_and_exit();
        }
        if (ended < 0 && errno != EINTR) kill_group_and_exit();
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            kill_group_and_exit();
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            char buffer[64];
            ssize_t count = read(LIFELINE_FD, buffer, sizeof buffer);
            if (count <= 0 && !(count < 0 && errno == EINTR)) kill_group_and_exit();
        }
        if (fds[1].revents & POLLIN) {
            char buffer[64];
            while (read(sigchld_pipe[0], buffer, sizeof buffer) > 0) {}
        }
    }
}
