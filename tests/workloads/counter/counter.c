/*
 * counter: the simplest stateful workload for checkpoint/restore tests.
 *
 * It keeps a counter in memory (and only there: the file is an output, never read back), increments
 * it every COUNTER_INTERVAL_MS milliseconds (default 100), writes the value to COUNTER_FILE (default
 * /tmp/count) after each increment, and serves it over HTTP on 0.0.0.0:PORT (default 8080):
 *   GET /         -> the number, as text followed by a newline
 *   GET /healthz  -> ok
 * A restored process therefore proves it kept its memory when the count goes on from the
 * checkpointed value instead of starting again at 1.
 * It prints nothing per tick, exits 0 on SIGTERM/SIGINT, and is single-threaded (poll() with a
 * timeout) so CRIU has one task to dump.
 *
 * Build: gcc -static -O2 -I../common -o counter counter.c
 */
#define _GNU_SOURCE /* accept4 in http.h */
#include <poll.h>
#include <signal.h>
#include <time.h>

#include "http.h"
#include "terminate.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void)
{
    long long interval_ms = env_ll("COUNTER_INTERVAL_MS", 100);
    if (interval_ms < 1) {
        interval_ms = 1;
    }
    const char *file = env_str("COUNTER_FILE", "/tmp/count");
    int listen_fd = http_listen((int)env_ll("PORT", 8080));

    install_termination_handlers();

    unsigned long long counter = 0;
    char text[32];
    long long next_tick = now_ms() + interval_ms;
    while (!stopping) {
        long long now = now_ms();
        if (now >= next_tick) {
            counter++;
            snprintf(text, sizeof text, "%llu\n", counter);
            write_file_atomic(file, text);
            /*
             * Schedule from now, not from the missed deadline: after a restore the monotonic clock
             * may have moved on by seconds, and catching up would add a burst of increments that
             * never happened while the process was running.
             */
            next_tick = now + interval_ms;
            continue;
        }
        struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)(next_tick - now));
        if (ready <= 0 || !(pfd.revents & POLLIN)) {
            continue;
        }
        char path[256];
        int client = http_accept(listen_fd, path, sizeof path);
        if (client < 0) {
            continue;
        }
        if (strcmp(path, "/") == 0) {
            snprintf(text, sizeof text, "%llu\n", counter);
            http_respond(client, 200, text);
        } else if (strcmp(path, "/healthz") == 0) {
            http_respond(client, 200, "ok\n");
        } else {
            http_respond(client, 404, "not found\n");
        }
        close(client);
    }
    close(listen_fd);
    return 0;
}
