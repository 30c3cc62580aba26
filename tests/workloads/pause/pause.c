/*
 * pause: the sandbox ("infra") process of a PodMigrate pod, like Kubernetes' pause container.
 *
 * It holds the pod's namespaces by simply existing: it sleeps forever, reaps any child that gets
 * re-parented to it (it is PID 1 of the pod's PID namespace when that is shared), and exits 0 on
 * SIGTERM or SIGINT so that stopping a sandbox is clean.
 *
 * Build: gcc -static -O2 -o pause pause.c
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_terminate(int signo)
{
    (void)signo;
    _exit(0);
}

static void on_child(int signo)
{
    (void)signo;
    /* Reap every exited child; errno is saved because a handler can interrupt any call. */
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static void install(int signo, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(signo, &sa, NULL) != 0) {
        _exit(2);
    }
}

int main(void)
{
    install(SIGTERM, on_terminate);
    install(SIGINT, on_terminate);
    install(SIGCHLD, on_child);
    for (;;) {
        pause();
    }
}
