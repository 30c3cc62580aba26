using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PodMigrate.Core.Diagnostics;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Containerd;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// `podmigrate soak census`: what the local cluster's nodes hold right now that a migration could leave behind, read
/// through containerd's API and the agents' own directories, plus each agent's resident memory and open files.
/// scripts/soak.sh takes one before and one after a load or soak run and compares them.
/// </summary>
internal static class SoakCommand
{
    private const string CheckpointImagePrefix = "localhost/podmigrate/checkpoint/";

    public static Command Create()
    {
        var census = new Command("census", "Count what the cluster's nodes hold (tasks, frozen tasks, snapshots, checkpoint images, leases, staging, prepared, journal, mounts) and the agents' RSS and open files, as JSON");
        census.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            Console.WriteLine((await TakeAsync(ct)).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Ok;
        }, ct));
        return new Command("soak", "Load and soak helpers for the local cluster (scripts/soak.sh)") { census };
    }

    private static async Task<JsonObject> TakeAsync(CancellationToken cancellationToken)
    {
        var run = CliCommon.RunDirectory;
        var cluster = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(run, "cluster.json"), cancellationToken))!;
        var mountinfo = await File.ReadAllLinesAsync("/proc/self/mountinfo", cancellationToken);
        var nodes = new JsonArray();
        foreach (var node in cluster["nodes"]!.AsArray())
        {
            var name = (string)node!["name"]!;
            using var containerd = ContainerdConnection.Open((string)node["containerdSocket"]!, "k8s.io");
            var tasks = await new ContainerdTasks(containerd).ListAsync(cancellationToken);
            var images = await new ContainerdImages(containerd).ListAsync(cancellationToken);
            var snapshots = await new ContainerdSnapshots(containerd).ListAsync(cancellationToken);
            var leases = await new ContainerdLeases(containerd).ListAsync(cancellationToken);
            var state = CliCommon.NodeAgentStateDirectory(name);
            var staging = (string?)node["stagingDir"] ?? $"/dev/shm/podmigrate-{name}";
            var prepared = (string?)node["preparedDir"] ?? "";
            var entry = new JsonObject
            {
                ["name"] = name,
                ["tasks"] = tasks.Count,
                ["frozenTasks"] = tasks.Count(t => t.State is TaskState.Paused or TaskState.Pausing),
                ["snapshots"] = snapshots.Count,
                // Active and view snapshots belong to containers (or to a restore in progress); committed ones are image layers.
                ["activeSnapshots"] = snapshots.Count(s => s.Kind != global::Containerd.Services.Snapshots.V1.Kind.Committed),
                ["images"] = images.Count,
                ["checkpointImages"] = images.Count(i => i.Name.StartsWith(CheckpointImagePrefix, StringComparison.Ordinal)),
                ["leases"] = leases.Count,
                ["stagingEntries"] = Entries(staging) + Entries(Path.Combine(state, "staging")),
                ["preparedEntries"] = Entries(prepared),
                ["journalEntries"] = JournalEntries(Path.Combine(state, "held-sources.json")),
                ["checkpointMounts"] = mountinfo.Count(l => l.Contains("/checkpoint", StringComparison.Ordinal) || l.Contains(staging, StringComparison.Ordinal) || (prepared.Length > 0 && l.Contains(prepared, StringComparison.Ordinal))),
            };
            var pidFile = Path.Combine(run, name, "agent.pid");
            if (File.Exists(pidFile) && int.TryParse((await File.ReadAllTextAsync(pidFile, cancellationToken)).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                entry["agentPid"] = pid;
                var memory = ProcessMemory.Read(pid);
                entry["agentRssKiB"] = memory?.RssKiB ?? -1;
                // By kind: anon (GC heap, malloc arenas, stacks) is what a leak would grow; file (mapped runtime and
                // assemblies) and shmem (JIT code under W^X) grow while code is first used, then stay.
                entry["agentAnonKiB"] = memory?.AnonKiB ?? -1;
                entry["agentFileKiB"] = memory?.FileKiB ?? -1;
                entry["agentShmemKiB"] = memory?.ShmemKiB ?? -1;
                entry["agentThreads"] = memory?.Threads ?? -1;
                entry["agentOpenFiles"] = Directory.Exists($"/proc/{pid}/fd") ? Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length : -1;
            }
            nodes.Add(entry);
        }
        var share = (string)cluster["share"]!;
        var shareEntries = Directory.Exists(share) ? Directory.GetFileSystemEntries(share).Select(Path.GetFileName).ToList() : [];
        return new JsonObject
        {
            ["takenAt"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            ["nodes"] = nodes,
            ["shareEntries"] = shareEntries.Count,
            ["sharePartials"] = shareEntries.Count(e => e!.Contains(".partial", StringComparison.Ordinal) || e.StartsWith('.')),
        };
    }

    private static int Entries(string directory) => directory.Length > 0 && Directory.Exists(directory) ? Directory.GetFileSystemEntries(directory).Length : 0;

    private static int JournalEntries(string path)
        => File.Exists(path) && JsonNode.Parse(File.ReadAllText(path)) is JsonArray entries ? entries.Count : 0;
}
