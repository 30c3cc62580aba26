using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;

namespace PodMigrate.Core.Images;

/// <summary>One of the test workloads under tests/workloads/: its C program and how its image is laid out.</summary>
public sealed record Workload(string Name, bool WithBusybox)
{
    /// <summary>The image name other components rely on: <c>&lt;registry&gt;/podmigrate/&lt;name&gt;:1</c>.</summary>
    public ImageReference ImageFor(string registry) => new(registry, $"podmigrate/{Name}", "1");

    /// <summary>Where the program lives in the image, and the image's entrypoint.</summary>
    public string BinaryPath => $"/{Name}";
}

/// <summary>Options of <see cref="WorkloadImages.BuildAndPushAsync"/>; the paths are resolved by the caller.</summary>
public sealed record WorkloadBuildOptions(string SourceDirectory, string OutputDirectory, string Registry)
{
    /// <summary>busybox-static's binary, copied into the images that get a shell.</summary>
    public string BusyboxPath { get; init; } = "/bin/busybox";

    public string Compiler { get; init; } = "gcc";

    public bool Push { get; init; } = true;
}

/// <summary>A workload image as built (and pushed, when asked).</summary>
public sealed record WorkloadImage(Workload Workload, BuiltImage Image, PushResult? Push);

/// <summary>
/// The test workloads (pause, counter, memhog): compiled from C with gcc as static binaries and packed as images
/// <c>&lt;registry&gt;/podmigrate/{pause,counter,memhog}:1</c>. counter and memhog carry busybox with a few applets
/// (so <c>ExecSync cat /tmp/count</c> works) and a 1777 /tmp; pause carries only /pause.
/// </summary>
public static class WorkloadImages
{
    public const string SourcesEnvironmentVariable = "PODMIGRATE_WORKLOADS";

    private const string RelativeSourceDirectory = "tests/workloads";
    private static readonly string[] BusyboxApplets = ["sh", "cat", "ls", "wget", "sleep"];
    private static readonly UnixFileMode Executable = (UnixFileMode)0b111_101_101;
    private static readonly UnixFileMode StickyWorldWritable = (UnixFileMode)0b1_111_111_111;

    public static Workload Pause { get; } = new("pause", WithBusybox: false);

    public static Workload Counter { get; } = new("counter", WithBusybox: true);

    public static Workload Memhog { get; } = new("memhog", WithBusybox: true);

    public static IReadOnlyList<Workload> All { get; } = [Pause, Counter, Memhog];

    /// <summary>
    /// The workload sources: <paramref name="explicitDirectory"/> if given, else <paramref name="environmentValue"/>
    /// (the value of PODMIGRATE_WORKLOADS, read by the caller), else tests/workloads in the first ancestor of one of
    /// <paramref name="searchFrom"/> that has it (the repository). NotFound names every place looked at.
    /// </summary>
    public static string LocateSources(string? explicitDirectory, string? environmentValue, IEnumerable<string> searchFrom)
    {
        ArgumentNullException.ThrowIfNull(searchFrom);
        var given = !string.IsNullOrEmpty(explicitDirectory) ? explicitDirectory : environmentValue;
        if (!string.IsNullOrEmpty(given))
        {
            return IsSourceDirectory(given) ? Path.GetFullPath(given) : throw PodMigrateException.NotFound($"{given} holds no workload sources (expected counter/counter.c)");
        }

        var tried = new List<string>();
        foreach (var start in searchFrom)
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
            {
                var candidate = Path.Combine(directory.FullName, RelativeSourceDirectory);
                if (IsSourceDirectory(candidate))
                {
                    return candidate;
                }

                tried.Add(candidate);
            }
        }

        throw PodMigrateException.NotFound(
            $"workload sources not found; pass --source-dir or set {SourcesEnvironmentVariable} (looked in {string.Join(", ", tried.Distinct())})");
    }

    /// <summary>Compiles one workload as a static binary with gcc (-static -O2 -s, warnings are errors).</summary>
    public static async Task<string> CompileAsync(Workload workload, string sourceDirectory, string outputDirectory, string compiler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workload);
        Directory.CreateDirectory(outputDirectory);
        var output = Path.Combine(outputDirectory, workload.Name);
        var source = Path.Combine(sourceDirectory, workload.Name, workload.Name + ".c");
        if (!File.Exists(source))
        {
            throw PodMigrateException.NotFound($"{source} does not exist");
        }

        await ProcessRunner.RunCheckedAsync(
            new ProcessSpec(compiler, ["-static", "-O2", "-s", "-Wall", "-Wextra", "-Werror", "-I", Path.Combine(sourceDirectory, "common"), "-o", output, source])
            {
                Timeout = TimeSpan.FromMinutes(2),
            },
            cancellationToken);
        return output;
    }

    /// <summary>The image of a workload whose binary was compiled to <paramref name="binary"/>.</summary>
    public static OciImageSpec ImageSpec(Workload workload, string registry, string binary, string busyboxPath)
    {
        ArgumentNullException.ThrowIfNull(workload);
        // busybox goes in a layer of its own: counter and memhog then share it, in the registry and on the nodes.
        IReadOnlyList<LayerEntry> program = [LayerEntry.File(workload.BinaryPath, binary, Executable)];
        IReadOnlyList<IReadOnlyList<LayerEntry>> layers = workload.WithBusybox ? [BusyboxLayer(busyboxPath), program] : [program];
        return new OciImageSpec
        {
            Name = workload.ImageFor(registry),
            Layers = layers,
            Entrypoint = [workload.BinaryPath],
            Env = workload.WithBusybox ? ["PATH=/bin"] : null,
            WorkingDir = "/",
        };
    }

    /// <summary>Compiles every workload, builds its image into OutputDirectory/layout and, unless disabled, pushes it.</summary>
    public static async Task<IReadOnlyList<WorkloadImage>> BuildAndPushAsync(WorkloadBuildOptions options, RegistryClient? registry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Push && registry is null)
        {
            throw new ArgumentNullException(nameof(registry), "pushing needs a registry client");
        }

        if (!File.Exists(options.BusyboxPath))
        {
            throw PodMigrateException.FailedPrecondition($"{options.BusyboxPath} does not exist (install Debian's busybox-static)");
        }

        var layout = await OciLayout.CreateAsync(Path.Combine(options.OutputDirectory, "layout"), cancellationToken);
        var results = new List<WorkloadImage>();
        foreach (var workload in All)
        {
            var binary = await CompileAsync(workload, options.SourceDirectory, Path.Combine(options.OutputDirectory, "bin"), options.Compiler, cancellationToken);
            var image = await OciImageBuilder.BuildAsync(ImageSpec(workload, options.Registry, binary, options.BusyboxPath), layout, cancellationToken);
            var push = options.Push ? await registry!.PushAsync(layout, image.Name, image.Name, cancellationToken) : null;
            results.Add(new WorkloadImage(workload, image, push));
        }

        return results;
    }

    private static IReadOnlyList<LayerEntry> BusyboxLayer(string busyboxPath)
        =>
        [
            LayerEntry.File("bin/busybox", busyboxPath, Executable),
            .. BusyboxApplets.Select(applet => LayerEntry.Symlink($"bin/{applet}", "busybox")),
            LayerEntry.Directory("tmp", StickyWorldWritable),
        ];

    private static bool IsSourceDirectory(string directory) => File.Exists(Path.Combine(directory, "counter", "counter.c"));
}
