using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.Telemetry;

namespace PodMigrate.Agent.Checkpointing;

/// <summary>
/// The instants around a checkpoint's commit points: the publication of its manifest on the share (the source's agent),
/// and the seal of its prepared staging (the target's agent: from the seal on, the node's runtime may consume it).
/// </summary>
public enum CommitPoint
{
    /// <summary>The hold is journaled as Publishing; the archive is about to be written and renamed into place.</summary>
    BeforePublish,

    /// <summary>The manifest has been renamed into place (committed); the disposition is not yet journaled.</summary>
    AfterPublish,

    /// <summary>
    /// seal_early: the hold is journaled as Sealed and the manifest sealed in the share's staging (a follower may use it);
    /// the archive is not yet durable, nor published.
    /// </summary>
    AfterSeal,

    /// <summary>A prepared checkpoint is fetched, verified and unpacked into its staging; the seal is not yet written.</summary>
    BeforePrepareSeal,

    /// <summary>A prepared checkpoint's seal is written; the controller has not yet been told.</summary>
    AfterPrepareSeal,
}

/// <summary>
/// The fault-injection seam at the commit point, for tests only; inert unless configured. Two ways in:
/// <see cref="AgentOptions.FaultExitAt"/> (configuration, e.g. PODMIGRATE_AGENT__FAULTEXITAT=AfterPublish in an agent
/// process's environment) makes the process SIGKILL itself at that instant, as an OOM-killed agent dies there, with no
/// finally block run; <see cref="AgentOptions.CommitPointHook"/> (an in-process agent) is awaited there, so a test can
/// cut the caller's stream at exactly that instant.
/// </summary>
internal sealed class CommitPointProbe(IOptions<AgentOptions> options, ILogger<CommitPointProbe> logger)
{
    public async Task ReachedAsync(CommitPoint point, string checkpointId, CancellationToken cancellationToken)
    {
        var configured = options.Value;
        if (configured.FaultExitAt == point)
        {
            AgentLog.FaultExit(logger, point, checkpointId);
            using var self = Process.GetCurrentProcess();
            self.Kill();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        if (configured.CommitPointHook is { } hook)
        {
            await hook(point, checkpointId, cancellationToken);
        }
    }
}
