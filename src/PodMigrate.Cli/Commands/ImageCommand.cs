using System.CommandLine;
using System.Runtime.CompilerServices;
using System.Text.Json;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// <c>podmigrate image build</c>: an OCI image from files, directories and symlinks into a layout (and optionally a registry);
/// <c>podmigrate image build-workloads</c>: the test workloads compiled and pushed as &lt;registry&gt;/podmigrate/{pause,counter,memhog}:1.
/// </summary>
internal static class ImageCommand
{
    private static readonly TimeSpan RegistryTimeout = TimeSpan.FromMinutes(5);

    public static Command Create()
    {
        var command = new Command("image", "Build OCI images and push them to a registry");
        command.Subcommands.Add(CreateBuild());
        command.Subcommands.Add(CreateBuildWorkloads());
        return command;
    }

    private static Option<string> OutputOption() => new Option<string>("--output", "-o")
    {
        Description = "Output format",
        DefaultValueFactory = _ => "text",
    }.AcceptOnlyFromAmong("text", "json");

    private static Command CreateBuild()
    {
        var name = new Option<string>("--name") { Description = "Image name, e.g. localhost:5000/podmigrate/app:1", Required = true };
        var layout = new Option<string>("--layout") { Description = "OCI layout directory to write (created if missing; other images in it are kept)", Required = true };
        var entrypoint = new Option<string[]>("--entrypoint") { Description = "Entrypoint argv, one element per occurrence" };
        var cmd = new Option<string[]>("--cmd") { Description = "Cmd argv, one element per occurrence" };
        var env = new Option<string[]>("--env") { Description = "Environment variable K=V (repeatable)" };
        var workdir = new Option<string?>("--workdir") { Description = "Working directory" };
        var files = new Option<string[]>("--file") { Description = "SRC:DEST[:MODE] host file into the image; MODE in octal, default the source's mode" };
        var dirs = new Option<string[]>("--dir") { Description = "DEST[:MODE] directory in the image (default mode 755)" };
        var symlinks = new Option<string[]>("--symlink") { Description = "LINK:TARGET symlink in the image" };
        var annotations = new Option<string[]>("--annotation") { Description = "K=V manifest annotation (repeatable)" };
        var push = new Option<bool>("--push") { Description = "Push the image to the registry its name starts with" };
        var output = OutputOption();
        var command = new Command("build", "Build a single-layer OCI image from host files into an OCI layout");
        foreach (var option in new Option[] { name, layout, entrypoint, cmd, env, workdir, files, dirs, symlinks, annotations, push, output })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, cancellationToken) => ExitCodes.RunAsync(async () =>
        {
            var entries = new List<LayerEntry>();
            entries.AddRange((parse.GetValue(files) ?? []).Select(ParseFile));
            entries.AddRange((parse.GetValue(dirs) ?? []).Select(ParseDirectory));
            entries.AddRange((parse.GetValue(symlinks) ?? []).Select(ParseSymlink));
            var spec = new OciImageSpec
            {
                Name = ImageReference.Parse(parse.GetValue(name)!),
                Layers = [entries],
                Entrypoint = NullIfEmpty(parse.GetValue(entrypoint)),
                Cmd = NullIfEmpty(parse.GetValue(cmd)),
                Env = NullIfEmpty(parse.GetValue(env)),
                WorkingDir = parse.GetValue(workdir),
                ManifestAnnotations = (parse.GetValue(annotations) ?? []).Select(a => SplitPair(a, '=', "--annotation")).ToDictionary(p => p.Key, p => p.Value),
            };
            var target = await OciLayout.CreateAsync(parse.GetValue(layout)!, cancellationToken);
            var image = await OciImageBuilder.BuildAsync(spec, target, cancellationToken);
            PushResult? pushed = null;
            if (parse.GetValue(push))
            {
                using var http = new HttpClient { Timeout = RegistryTimeout };
                pushed = await new RegistryClient(http).PushAsync(target, image.Name, image.Name, cancellationToken);
            }

            Print(parse.GetValue(output)!, [(image, pushed)]);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    private static Command CreateBuildWorkloads()
    {
        var registry = new Option<string>("--registry") { Description = "Registry host the images are named after and pushed to", DefaultValueFactory = _ => "localhost:5000" };
        var sourceDir = new Option<string?>("--source-dir") { Description = $"Workload sources (default: ${WorkloadImages.SourcesEnvironmentVariable}, else tests/workloads of the repository)" };
        var outDir = new Option<string>("--out")
        {
            Description = "Where binaries (bin/) and the OCI layout (layout/) are written",
            DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "podmigrate-workloads"),
        };
        var noPush = new Option<bool>("--no-push") { Description = "Build the layout only" };
        var output = OutputOption();
        var command = new Command("build-workloads", "Compile the test workloads (gcc -static) and build and push <registry>/podmigrate/{pause,counter,memhog}:1");
        foreach (var option in new Option[] { registry, sourceDir, outDir, noPush, output })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, cancellationToken) => ExitCodes.RunAsync(async () =>
        {
            var sources = WorkloadImages.LocateSources(
                parse.GetValue(sourceDir),
                Environment.GetEnvironmentVariable(WorkloadImages.SourcesEnvironmentVariable),
                [Environment.CurrentDirectory, AppContext.BaseDirectory, SourceFileDirectory()]);
            var options = new WorkloadBuildOptions(sources, Path.GetFullPath(parse.GetValue(outDir)!), parse.GetValue(registry)!) { Push = !parse.GetValue(noPush) };
            using var http = new HttpClient { Timeout = RegistryTimeout };
            var images = await WorkloadImages.BuildAndPushAsync(options, new RegistryClient(http), cancellationToken);
            Print(parse.GetValue(output)!, images.Select(i => (i.Image, i.Push)).ToList());
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    private static void Print(string format, IReadOnlyList<(BuiltImage Image, PushResult? Push)> images)
    {
        if (format == "json")
        {
            using var stdout = Console.OpenStandardOutput();
            using var json = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteStartArray("images");
            foreach (var (image, push) in images)
            {
                json.WriteStartObject();
                json.WriteString("name", image.Name.ToString());
                json.WriteString("digest", image.ManifestDigest.ToString());
                json.WriteString("pinned", image.Name.PinnedTo(image.ManifestDigest).ToString());
                json.WriteString("layout", image.LayoutDirectory);
                json.WriteBoolean("pushed", push is not null);
                if (push is not null)
                {
                    json.WriteNumber("blobsUploaded", push.BlobsUploaded);
                    json.WriteNumber("blobsSkipped", push.BlobsSkipped);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
            json.Flush();
            stdout.WriteByte((byte)'\n');
            return;
        }

        foreach (var (image, push) in images)
        {
            Console.WriteLine($"{image.Name} {image.ManifestDigest}{(push is null ? string.Empty : " pushed")}");
        }
    }

    private static FileEntry ParseFile(string value)
    {
        var parts = value.Split(':');
        if (parts.Length is < 2 or > 3)
        {
            throw PodMigrateException.InvalidArgument($"--file {value}: expected SRC:DEST[:MODE]");
        }

        var source = Path.GetFullPath(parts[0]);
        if (!File.Exists(source))
        {
            throw PodMigrateException.NotFound($"--file {value}: {source} does not exist");
        }

        var mode = parts.Length == 3 ? ParseMode(parts[2], value) : new FileInfo(source).UnixFileMode;
        return LayerEntry.File(parts[1], source, mode);
    }

    private static DirectoryEntry ParseDirectory(string value)
    {
        var parts = value.Split(':');
        return parts.Length switch
        {
            1 => LayerEntry.Directory(parts[0]),
            2 => LayerEntry.Directory(parts[0], ParseMode(parts[1], value)),
            _ => throw PodMigrateException.InvalidArgument($"--dir {value}: expected DEST[:MODE]"),
        };
    }

    private static SymlinkEntry ParseSymlink(string value)
    {
        var (link, target) = SplitPair(value, ':', "--symlink");
        return LayerEntry.Symlink(link, target);
    }

    private static UnixFileMode ParseMode(string mode, string option)
    {
        try
        {
            var bits = Convert.ToInt32(mode, 8);
            return bits is >= 0 and <= 0b111_111_111_111 ? (UnixFileMode)bits : throw new FormatException();
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            throw PodMigrateException.InvalidArgument($"{option}: '{mode}' is not an octal file mode such as 755");
        }
    }

    private static KeyValuePair<string, string> SplitPair(string value, char separator, string option)
    {
        var at = value.IndexOf(separator, StringComparison.Ordinal);
        return at > 0 && at < value.Length - 1
            ? new(value[..at], value[(at + 1)..])
            : throw PodMigrateException.InvalidArgument($"{option} {value}: expected A{separator}B");
    }

    /// <summary>Where this file was compiled: finds the checkout the CLI was built from when run elsewhere (--artifacts-path outside the tree).</summary>
    private static string SourceFileDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path) ?? string.Empty;

    private static string[]? NullIfEmpty(string[]? values) => values is { Length: > 0 } ? values : null;
}
