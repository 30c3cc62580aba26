/*
 * podmigrate-runc's pass-through before the .NET runtime starts.
 *
 * Almost every call the shim makes (state, kill, delete, exec, ps, pause, resume, ...) goes to runc unchanged. Starting
 * the NativeAOT runtime (GC heap, finalizer thread, cgroup probing, data rehydration) costs about 10 ms of CPU per call
 * on these machines, twice the 5 ms budget of issue 9 (`podmigrate bench runtime` measures it). This ELF constructor runs
 * before the runtime: when no argument is "create" or "start", the call cannot be one the runtime handles, and it
 * becomes runc here. Anything else, or any failure here, falls through to the managed Main, which decides with the real
 * parser (RuncCommandLine) and finds runc the same way. The rule is deliberately coarser than the parser (any argument,
 * not just the command): it never sends to runc a call the parser would keep, so the two need not agree in detail.
 * Only the NativeAOT binary has this file (PodMigrate.Runtime.csproj links it on publish); tests of the managed code run
 * without it.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUNC_ENV "PODMIGRATE_RUNC" /* Runc.PathEnvironmentVariable */
#define RUNC_DEFAULT "/usr/sbin/runc"

#define LAZY_PAGES_COMMAND "podmigrate-lazy-pages" /* LazyPagesSupervisor.Command: the runtime's own child, never runc's */

static int may_be_handled(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], LAZY_PAGES_COMMAND) == 0)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "create") == 0 || strcmp(argv[i], "start") == 0)
            return 1;
    }
    return 0;
}

/* The first executable "runc" on PATH that is not this binary (same file: same device and inode), else the default. */
static const char *locate_runc(char *buffer, size_t size)
{
    const char *configured = getenv(RUNC_ENV);
    if (configured != NULL && configured[0] != '\0')
        return configured;
    struct stat self;
    if (stat("/proc/self/exe", &self) != 0)
        return NULL;
    const char *path = getenv("PATH");
    while (path != NULL && *path != '\0') {
        const char *end = strchr(path, ':');
        size_t length = end != NULL ? (size_t)(end - path) : strlen(path);
        if (length > 0 && length + sizeof("/runc") <= size) {
            memcpy(buffer, path, length);
            memcpy(buffer + length, "/runc", sizeof("/runc"));
            struct stat candidate;
            if (stat(buffer, &candidate) == 0 && S_ISREG(candidate.st_mode)
                && !(candidate.st_dev == self.st_dev && candidate.st_ino == self.st_ino))
                return buffer;
        }
        path = end != NULL ? end + 1 : NULL;
    }
    return RUNC_DEFAULT;
}

__attribute__((constructor)) static void podmigrate_pass_through(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc < 1 || argv == NULL || may_be_handled(argc, argv))
        return;
    char buffer[4096];
    const char *runc = locate_runc(buffer, sizeof buffer);
    if (runc == NULL)
        return;
    argv[0] = "runc";
    execv(runc, argv);
    /* Only on failure: the managed Main tries again and reports the error. */
}
