using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Core.Processes;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;

namespace PodMigrate.Agent.NodeInfo;

/// <summary>What this node can do, asked of the systems themselves each time (versions, CRIU features, the share).</summary>
internal sealed class NodeInfoProvider(IOptions<AgentOptions> options, ContainerdConnection containerd, CriConnection cri, CriuCapabilities criu, ILogger<NodeInfoProvider> logger)
{
    private readonly AgentOptions _options = options.Value;

    public async Task<V1.NodeInfo> GetAsync(CancellationToken cancellationToken)
    {
        var info = new V1.NodeInfo
        {
            NodeName = _options.NodeName,
            AgentVersion = typeof(NodeInfoProvider).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "",
            ContainerdVersion = (await containerd.VersionAsync(cancellationToken)).Version,
            RuncVersion = await RuncVersionAsync(cancellationToken),
            Kernel = (await File.ReadAllTextAsync("/proc/sys/kernel/osrelease", cancellationToken)).Trim(),
            Architecture = RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant(),
            CgroupLayout = CgroupLayout(),
            Share = Share(),
        };
        var (version, features) = await criu.GetAsync(cancellationToken);
        info.CriuVersion = version.Number;
        info.CriuVersionText = version.ToString();
        info.CriuFeatures = new V1.CriuFeatures
        {
            MemTrack = features.MemoryTracking,
            LazyPages = features.LazyPages,
            PidfdStore = features.PidfdStore,
        };
        info.Codecs.Add(CheckpointCodecs.All.Select(c => c.Name));
        var handlers = await RuntimeHandlersAsync(cancellationToken);
        info.RuntimeHandlers.Add(handlers);
        info.RestoreRuntime = handlers.Count > 0 ? handlers.Contains(_options.RestoreRuntimeHandler) : _options.RestoreRuntimeInstalled;
        return info;
    }

    /// <summary>The runtime handlers CRI Status lists (containerd 2.x; empty from runtimes that list none, such as containerd 1.7).</summary>
    private async Task<List<string>> RuntimeHandlersAsync(CancellationToken cancellationToken)
    {
        try
        {
            var status = await cri.Runtime.StatusAsync(verbose: false, cancellationToken);
            return status.RuntimeHandlers.Select(h => h.Name).Where(n => n.Length > 0).ToList();
        }
        catch (PodMigrateException e) when (e.Kind is not ErrorKind.Cancelled)
        {
            AgentLog.RuntimeHandlersUnknown(logger, e.Message);
            return [];
        }
    }

    /// <summary>runc has no API: its version line is the interface.</summary>
    private static async Task<string> RuncVersionAsync(CancellationToken cancellationToken)
    {
        try
        {
            var result = await ProcessRunner.RunAsync(new ProcessSpec("runc", ["--version"]) { Timeout = TimeSpan.FromSeconds(10) }, cancellationToken);
            return result.Succeeded ? result.StandardOutput.Split('\n')[0].Replace("runc version ", "", StringComparison.Ordinal).Trim() : "";
        }
        catch (PodMigrateException)
        {
            return "";
        }
    }

    private static string CgroupLayout()
        => Directory.Exists("/sys/fs/cgroup/unified") ? "hybrid"
            : File.Exists("/sys/fs/cgroup/cgroup.controllers") ? "v2"
            : "v1";

    private ShareInfo Share()
    {
        var share = new ShareInfo { Path = _options.ShareRoot };
        if (!Directory.Exists(_options.ShareRoot))
        {
            return share;
        }
        share.FreeBytes = DurableFileSystem.TryGetAvailableBytes(_options.ShareRoot) ?? -1; // -1: the share cannot tell
        share.Writable = ProbeWritable(_options.ShareRoot);
        return share;
    }

    private static bool ProbeWritable(string root)
    {
        var probe = Path.Combine(root, $".probe-{Guid.NewGuid():N}");
        try
        {
            using (var stream = new FileStream(probe, FileMode.CreateNew, FileAccess.Write))
            {
                stream.WriteByte(1);
                stream.Flush(flushToDisk: true);
            }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        finally
        {
            File.Delete(probe);
        }
    }
}
