/*
 * memhog: a workload whose memory can be checked byte for byte after a restore.
 *
 * It allocates MEMHOG_MIB MiB (default 64) and fills it with a pattern that depends only on
 * MEMHOG_SEED (default 1) and the position, in 64-byte blocks. MEMHOG_PATTERN=random (the default):
 * the 64-bit little-endian word at index i is splitmix64(seed + i), the finaliser of Java's
 * SplittableRandom, as incompressible as /dev/urandom. MEMHOG_PATTERN=text: block j is a JSON log
 * line ({"id":j,"user":…,"status":…,"ms":…} padded with spaces to 63 bytes and a newline) whose fields
 * come from splitmix64(seed + j): compressible like an application's heap of strings (zstd -1 packs
 * it several times). Any block can be recomputed on its own, so the region is re-verified in slices: MEMHOG_SLICE_MIB MiB (default 1) at a time, with
 * MEMHOG_SLICE_SLEEP_MS ms (default 5) of poll() between slices, which bounds the CPU it uses.
 * Each completed pass increments a pass counter.
 *
 * Growth (the OOM guard's tests): with MEMHOG_GROW_MIB_PER_S=R (default 0, no growth) it fills R MiB more per
 * second of its own running time (ticks of at most 200 ms count, so a freeze or a migration adds no burst) up to
 * MEMHOG_MAX_MIB (default MEMHOG_MIB); the region is reserved at that size up front and charged only as it is
 * filled, with the same pattern, and verified as far as filled. The status line's mib= is the filled size (rewritten
 * as it grows).
 *
 * After each pass it writes /tmp/memhog.status (or MEMHOG_STATUS_FILE):
 *   "ok passes=N mib=M seed=S"   while everything matched, or
 *   "CORRUPT offset=X"           (X = byte offset of the first bad word; verification then stops)
 * and it serves on 0.0.0.0:PORT (default 8080):
 *   GET /         -> the status line
 *   GET /digest/base -> the same digest over the first MEMHOG_MIB MiB only (unchanged while the region grows)
 *   GET /digest   -> FNV-1a 64 of the whole (filled) region, byte by byte (offset basis 0xcbf29ce484222325,
 *                    prime 0x100000001b3), as 16 lowercase hex digits, computed on request from the
 *                    live memory, so two reads (or a read before checkpoint and after restore) agree
 *                    exactly when the memory survived
 *   GET /healthz  -> ok
 *   GET /heartbeat -> "beats=N max_gap_ns=G gap_start_ns=S gap_end_ns=E now_ns=T": a second thread wakes every
 *                    10 ms and records the longest wall-clock (CLOCK_REALTIME) gap between two consecutive wake-ups
 *                    and when it began and ended, so a test can hold a migration's reported downtime against
 *                    the pause the workload itself saw (the clock is wall time: it goes on across nodes)
 *   GET /heartbeat/reset -> clears the longest gap (e.g. right before a checkpoint), answers as /heartbeat
 * Two threads (the verifier and HTTP, the heartbeat); exits 0 on SIGTERM/SIGINT.
 *
 * Build: gcc -static -O2 -I../common -o memhog memhog.c
 */
#define _GNU_SOURCE /* accept4 in http.h */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
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

/* The heartbeat: the longest wall-clock gap between two 10 ms wake-ups, and when it was. */
static pthread_mutex_t heartbeat_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t heartbeat_last_ns, heartbeat_max_gap_ns, heartbeat_gap_start_ns, heartbeat_gap_end_ns;
static unsigned long long heartbeat_beats;

static int64_t realtime_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static void *heartbeat(void *unused)
{
    (void)unused;
    const struct timespec period = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    while (!stopping) {
        nanosleep(&period, NULL);
        int64_t now = realtime_ns();
        pthread_mutex_lock(&heartbeat_lock);
        if (heartbeat_last_ns != 0 && now - heartbeat_last_ns > heartbeat_max_gap_ns) {
            heartbeat_max_gap_ns = now - heartbeat_last_ns;
            heartbeat_gap_start_ns = heartbeat_last_ns;
            heartbeat_gap_end_ns = now;
        }
        heartbeat_last_ns = now;
        heartbeat_beats++;
        pthread_mutex_unlock(&heartbeat_lock);
    }
    return NULL;
}

static void heartbeat_report(char *out, size_t size, int reset)
{
    pthread_mutex_lock(&heartbeat_lock);
    snprintf(out, size, "beats=%llu max_gap_ns=%" PRId64 " gap_start_ns=%" PRId64 " gap_end_ns=%" PRId64 " now_ns=%" PRId64 "\n",
             heartbeat_beats, heartbeat_max_gap_ns, heartbeat_gap_start_ns, heartbeat_gap_end_ns, realtime_ns());
    if (reset) {
        heartbeat_max_gap_ns = heartbeat_gap_start_ns = heartbeat_gap_end_ns = 0;
    }
    pthread_mutex_unlock(&heartbeat_lock);
}

enum { BLOCK = 64 };

static int text_pattern;

/* The 64 bytes at block index j, for the chosen pattern. */
static void expected_block(uint64_t seed, size_t j, unsigned char *out)
{
    if (!text_pattern) {
        for (size_t k = 0; k < BLOCK / sizeof(uint64_t); k++) {
            uint64_t word = splitmix64(seed + j * (BLOCK / sizeof(uint64_t)) + k);
            memcpy(out + k * sizeof word, &word, sizeof word);
        }
        return;
    }
    static const unsigned statuses[] = {200, 200, 200, 201, 204, 304, 404, 500};
    uint64_t h = splitmix64(seed + j);
    char line[BLOCK + 1];
    int n = snprintf(line, sizeof line, "{\"id\":%zu,\"user\":\"user%02u\",\"status\":%u,\"ms\":%u}",
                     j, (unsigned)(h % 50), statuses[(h >> 8) % 8], (unsigned)((h >> 16) % 1000));
    if (n < 0 || n > BLOCK - 1) {
        n = BLOCK - 1;
    }
    memset(line + n, ' ', (size_t)(BLOCK - 1 - n));
    line[BLOCK - 1] = '\n';
    memcpy(out, line, BLOCK);
}

int main(void)
{
    long long mib = env_ll("MEMHOG_MIB", 64);
    if (mib < 1) {
        mib = 1;
    }
    uint64_t seed = (uint64_t)env_ll("MEMHOG_SEED", 1);
    text_pattern = strcmp(env_str("MEMHOG_PATTERN", "random"), "text") == 0;
    long long slice_mib = env_ll("MEMHOG_SLICE_MIB", 1);
    if (slice_mib < 1 || slice_mib > mib) {
        slice_mib = slice_mib < 1 ? 1 : mib;
    }
    int slice_sleep_ms = (int)env_ll("MEMHOG_SLICE_SLEEP_MS", 5);
    const char *status_file = env_str("MEMHOG_STATUS_FILE", "/tmp/memhog.status");
    int listen_fd = http_listen((int)env_ll("PORT", 8080));

    install_termination_handlers();

    long long grow_mib_per_s = env_ll("MEMHOG_GROW_MIB_PER_S", 0);
    long long max_mib = env_ll("MEMHOG_MAX_MIB", mib);
    if (max_mib < mib) {
        max_mib = mib;
    }
    size_t base_size = (size_t)mib << 20;
    size_t size = base_size;
    size_t max_size = (size_t)max_mib << 20;
    uint64_t *words = mmap(NULL, max_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (words == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    unsigned char *bytes = (unsigned char *)words;
    size_t block_count = size / BLOCK;
    for (size_t j = 0; j < block_count; j++) {
        expected_block(seed, j, bytes + j * BLOCK);
    }
    int64_t last_grow_ns = realtime_ns();
    double grow_credit = 0;

    pthread_t heartbeat_thread;
    if (pthread_create(&heartbeat_thread, NULL, heartbeat, NULL) != 0) {
        perror("pthread_create");
        return 1;
    }

    char status[128];
    snprintf(status, sizeof status, "ok passes=0 mib=%zu seed=%" PRIu64 "\n", size >> 20, seed);
    write_file_atomic(status_file, status);

    size_t slice_blocks = ((size_t)slice_mib << 20) / BLOCK;
    size_t cursor = 0;
    unsigned long long passes = 0;
    int corrupt = 0;
    while (!stopping) {
        if (grow_mib_per_s > 0 && size < max_size) {
            int64_t now = realtime_ns();
            int64_t tick = now - last_grow_ns;
            if (tick >= 100 * 1000 * 1000LL) {
                last_grow_ns = now;
                if (tick > 200 * 1000 * 1000LL) {
                    tick = 200 * 1000 * 1000LL;
                }
                grow_credit += (double)grow_mib_per_s * (double)(1 << 20) * (double)tick / 1e9;
                size_t grow = (size_t)grow_credit / BLOCK * BLOCK;
                if (grow > max_size - size) {
                    grow = max_size - size;
                }
                grow_credit -= (double)grow;
                for (size_t j = size / BLOCK; j < (size + grow) / BLOCK; j++) {
                    expected_block(seed, j, bytes + j * BLOCK);
                }
                size += grow;
                block_count = size / BLOCK;
                if (grow > 0 && !corrupt) {
                    snprintf(status, sizeof status, "ok passes=%llu mib=%zu seed=%" PRIu64 "\n", passes, size >> 20, seed);
                    write_file_atomic(status_file, status);
                }
            }
        }
        if (!corrupt) {
            size_t end = cursor + slice_blocks < block_count ? cursor + slice_blocks : block_count;
            unsigned char expected[BLOCK];
            for (size_t j = cursor; j < end; j++) {
                expected_block(seed, j, expected);
                if (memcmp(bytes + j * BLOCK, expected, BLOCK) != 0) {
                    size_t at = 0;
                    while (bytes[j * BLOCK + at] == expected[at]) {
                        at++;
                    }
                    corrupt = 1;
                    snprintf(status, sizeof status, "CORRUPT offset=%zu\n", j * BLOCK + at);
                    write_file_atomic(status_file, status);
                    break;
                }
            }
            cursor = end;
            if (!corrupt && cursor == block_count) {
                cursor = 0;
                passes++;
                snprintf(status, sizeof status, "ok passes=%llu mib=%zu seed=%" PRIu64 "\n", passes, size >> 20, seed);
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
        } else if (strcmp(path, "/digest/base") == 0) {
            char digest[32];
            snprintf(digest, sizeof digest, "%016" PRIx64 "\n", fnv1a64((const unsigned char *)words, base_size));
            http_respond(client, 200, digest);
        } else if (strcmp(path, "/digest") == 0) {
            char digest[32];
            snprintf(digest, sizeof digest, "%016" PRIx64 "\n", fnv1a64((const unsigned char *)words, size));
            http_respond(client, 200, digest);
        } else if (strcmp(path, "/heartbeat") == 0 || strcmp(path, "/heartbeat/reset") == 0) {
            char report[192];
            heartbeat_report(report, sizeof report, strcmp(path, "/heartbeat/reset") == 0);
            http_respond(client, 200, report);
        } else if (strcmp(path, "/healthz") == 0) {
            http_respond(client, 200, "ok\n");
        } else {
            http_respond(client, 404, "not found\n");
        }
        close(client);
    }
    pthread_join(heartbeat_thread, NULL);
    munmap(words, max_size);
    close(listen_fd);
    return 0;
}
