using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;

namespace PodMigrate.Node.Restore;

/// <summary>
/// Named network namespaces (<c>/run/netns/NAME</c>) for restored bare containers. A pod's checkpoint was taken in the
/// sandbox's network namespace, which runc declares external to CRIU; restoring it needs an existing namespace to put
/// the process into. iproute2's <c>ip netns</c> is the interface for named namespaces (it bind-mounts the nsfs file),
/// so it is called through <see cref="ProcessRunner"/>; nothing it prints is read.
/// </summary>
public static class NetworkNamespaces
{
    public const string Directory = "/run/netns";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>Creates the namespace with its loopback up; returns its path.</summary>
    public static async Task<string> CreateAsync(string name, CancellationToken cancellationToken)
    {
        Validate(name);
        await RunAsync(["netns", "add", name], cancellationToken);
        try
        {
            await RunAsync(["-n", name, "link", "set", "lo", "up"], cancellationToken);
        }
        catch
        {
            using var cleanup = new CancellationTokenSource(Timeout);
            await DeleteAsync(name, cleanup.Token);
            throw;
        }
        return PathOf(name);
    }

    /// <summary>Deletes the namespace if it exists; false when there was none.</summary>
    public static async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        Validate(name);
        if (!File.Exists(PathOf(name)))
        {
            return false;
        }
        await RunAsync(["netns", "delete", name], cancellationToken);
        return true;
    }

    public static string PathOf(string name) => Path.Combine(Directory, name);

    private static void Validate(string name)
    {
        if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') || name[0] == '.')
        {
            throw PodMigrateException.InvalidArgument($"'{name}' is not a valid network namespace name");
        }
    }

    private static Task<ProcessResult> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
        => ProcessRunner.RunCheckedAsync(new ProcessSpec("ip", arguments) { Timeout = Timeout }, cancellationToken);
}
