/*
 * A tiny single-threaded HTTP/1.0 responder shared by the test workloads.
 *
 * The workloads are single-threaded on purpose: one process, one thread, a poll() loop, so that a
 * CRIU dump and restore has nothing to coordinate. One request is served at a time and every
 * connection is closed after its answer, so between requests there is no established TCP
 * connection to checkpoint, only the listening socket.
 */
#ifndef PODMIGRATE_WORKLOAD_HTTP_H
#define PODMIGRATE_WORKLOAD_HTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Reads an integer from the environment, falling back to a default when unset or malformed. */
static long long env_ll(const char *name, long long fallback)
{
    const char *value = getenv(name);
    if (value == NULL || *value == '\0') {
        return fallback;
    }
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0') {
        fprintf(stderr, "%s=%s is not an integer, using %lld\n", name, value, fallback);
        return fallback;
    }
    return parsed;
}

static const char *env_str(const char *name, const char *fallback)
{
    const char *value = getenv(name);
    return (value == NULL || *value == '\0') ? fallback : value;
}

/*
 * Opens a non-blocking listening socket on 0.0.0.0:port; exits the process on failure.
 * The backlog is the system's maximum, as real servers ask: a workload held frozen by a checkpoint is still probed
 * (a kubelet's readiness probe every second), and the kernel queues those connections, request and all, until it thaws.
 * With a short backlog the queue overflowed within seconds; the connections refused then completed their handshakes
 * late, by retransmission after the thaw, with their request still to come, and each of those stalled this one-request-
 * at-a-time loop for its whole receive timeout: a workload resumed after a rollback stopped answering for seconds.
 */
static int http_listen(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, SOMAXCONN) != 0) {
        perror("bind/listen");
        exit(1);
    }
    return fd;
}

/* Writes all of buf, retrying on short writes; gives up silently if the peer went away. */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void http_respond(int fd, int status, const char *body)
{
    char head[256];
    const char *reason = status == 200 ? "OK" : (status == 404 ? "Not Found" : "Bad Request");
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, strlen(body));
    write_all(fd, head, (size_t)n);
    write_all(fd, body, strlen(body));
}

/*
 * Accepts one pending connection and reads its request line into path (e.g. "/healthz").
 * Returns the connected fd, or -1 when there was nothing to accept or the request was unusable.
 * A receive timeout keeps a silent client from stalling the workload's loop for long.
 */
static int http_accept(int listen_fd, char *path, size_t path_size)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    struct timeval timeout = {.tv_sec = 1, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char request[2048];
    size_t used = 0;
    while (used < sizeof request - 1) {
        ssize_t n = read(fd, request + used, sizeof request - 1 - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        used += (size_t)n;
        request[used] = '\0';
        if (strstr(request, "\r\n\r\n") != NULL || strstr(request, "\n\n") != NULL) {
            break;
        }
    }
    request[used] = '\0';
    char method[8];
    if (sscanf(request, "%7s %255s", method, path) != 2 || path_size < 256) {
        http_respond(fd, 400, "bad request\n");
        close(fd);
        return -1;
    }
    if (strcmp(method, "GET") != 0) {
        http_respond(fd, 400, "only GET\n");
        close(fd);
        return -1;
    }
    return fd;
}

/* Replaces path's content atomically: readers see the old or the new text, never a torn one. */
static void write_file_atomic(const char *path, const char *text)
{
    char temp[4096];
    snprintf(temp, sizeof temp, "%s.tmp", path);
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return;
    }
    write_all(fd, text, strlen(text));
    close(fd);
    rename(temp, path);
}

#endif
