/*
 * memhog: a workload whose memory can be checked byte for byte after a restore.
 *
 * It allocates MEMHOG_MIB MiB (default 64) and fills it with a pattern that depends only on
 * MEMHOG_SEED (default 1) and the position: the 64-bit little-endian word at index i is
 * splitmix64(seed + i), the finaliser of Java's SplittableRandom. Any word can be recomputed on its
 * own, so the region is re-verified in slices: MEMHOG_SLICE_MIB MiB (default 1) at a time, with
 * MEMHOG_SLICE_SLEEP_MS ms (default 5) of poll() between slices, which bounds the CPU it uses.
 * Each completed pass increments a pass counter.
 *
 * After each pass it writes /tmp/memhog.status (or MEMHOG_STATUS_FILE):
 *   "ok passes=N mib=M seed=S"   while everything matched, or
 *   "CORRUPT offset=X"           (X = byte offset of the first bad word; verification then stops)
 * and it serves on 0.0.0.0:PORT (default 8080):
 *   GET /         -> the status line
 *   GET /digest   -> FNV-1a 64 of the whole region, byte by byte (offset basis 0xcbf29ce484222325,
 *                    prime 0x100000001b3), as 16 lowercase hex digits, computed on request from the
 *                    live memory, so two reads (or a read before checkpoint and after restore) agree
 *                    exactly when the memory survived
 *   GET /healthz  -> ok
 * Single-threaded, exits 0 on SIGTERM/SIGINT.
 *
 * Build: gcc -static -O2 -I../common -o memhog memhog.c
 */
#define _GNU_SOURCE /* accept4 in http.h */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#include "http.h"
#include "terminate.h"

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t fnv1a64(const unsigned char *data, size_t size)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++) {
        hash ^= data[i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

int main(void)
{
    long long mib = env_ll("MEMHOG_MIB", 64);
    if (mib < 1) {
        mib = 1;
    }
    uint64_t seed = (uint64_t)env_ll("MEMHOG_SEED", 1);
    long long slice_mib = env_ll("MEMHOG_SLICE_MIB", 1);
    if (slice_mib < 1 || slice_mib > mib) {
        slice_mib = slice_mib < 1 ? 1 : mib;
    }
    int slice_sleep_ms = (int)env_ll("MEMHOG_SLICE_SLEEP_MS", 5);
    const char *status_file = env_str("MEMHOG_STATUS_FILE", "/tmp/memhog.status");
    int listen_fd = http_listen((int)env_ll("PORT", 8080));

    install_termination_handlers();

    size_t size = (size_t)mib << 20;
    uint64_t *words = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (words == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    size_t word_count = size / sizeof(uint64_t);
    for (size_t i = 0; i < word_count; i++) {
        words[i] = splitmix64(seed + i);
    }

    char status[128];
    snprintf(status, sizeof status, "ok passes=0 mib=%lld seed=%" PRIu64 "\n", mib, seed);
    write_file_atomic(status_file, status);

    size_t slice_words = ((size_t)slice_mib << 20) / sizeof(uint64_t);
    size_t cursor = 0;
    unsigned long long passes = 0;
    int corrupt = 0;
    while (!stopping) {
        if (!corrupt) {
            size_t end = cursor + slice_words < word_count ? cursor + slice_words : word_count;
            for (size_t i = cursor; i < end; i++) {
                if (words[i] != splitmix64(seed + i)) {
                    corrupt = 1;
                    snprintf(status, sizeof status, "CORRUPT offset=%zu\n", i * sizeof(uint64_t));
                    write_file_atomic(status_file, status);
                    break;
                }
            }
            cursor = end;
            if (!corrupt && cursor == word_count) {
                cursor = 0;
                passes++;
                snprintf(status, sizeof status, "ok passes=%llu mib=%lld seed=%" PRIu64 "\n", passes, mib, seed);
                write_file_atomic(status_file, status);
            }
        }
        /* The pause between slices doubles as the wait for HTTP requests. */
        struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
        int ready = poll(&pfd, 1, corrupt ? 1000 : slice_sleep_ms);
        if (ready <= 0 || !(pfd.revents & POLLIN)) {
            continue;
        }
        char path[256];
        int client = http_accept(listen_fd, path, sizeof path);
        if (client < 0) {
            continue;
        }
        if (strcmp(path, "/") == 0) {
            http_respond(client, 200, status);
        } else if (strcmp(path, "/digest") == 0) {
            char digest[32];
            snprintf(digest, sizeof digest, "%016" PRIx64 "\n", fnv1a64((const unsigned char *)words, size));
            http_respond(client, 200, digest);
        } else if (strcmp(path, "/healthz") == 0) {
            http_respond(client, 200, "ok\n");
        } else {
            http_respond(client, 404, "not found\n");
        }
        close(client);
    }
    munmap(words, size);
    close(listen_fd);
    return 0;
}
