/* Shared by the test workloads: exit cleanly on SIGTERM/SIGINT, as a container's process should. */
#ifndef PODMIGRATE_TERMINATE_H
#define PODMIGRATE_TERMINATE_H

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stopping;

static void on_terminate(int signo)
{
    (void)signo;
    stopping = 1;
}

/* No SA_RESTART: a signal must interrupt poll() so the main loop notices it at once. */
static void install_termination_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_terminate;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

#endif
