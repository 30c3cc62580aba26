namespace PodMigrate.Controller;

/// <summary>How the controller runs; the CLI's `podmigrate controller` flags map onto these.</summary>
public sealed class ControllerOptions
{
    /// <summary>Only PodMigrations (and clone-of pods) in this namespace; null: all namespaces.</summary>
    public string? WatchNamespace { get; set; }

    /// <summary>Where the Lease lives (the controller's own namespace, POD_NAMESPACE in a Deployment).</summary>
    public string LeaseNamespace { get; set; } = "podmigrate-system";

    public string LeaseName { get; set; } = "podmigrate-controller";

    /// <summary>This replica's identity in the Lease (POD_NAME in a Deployment).</summary>
    public string Identity { get; set; } = Environment.MachineName + "-" + Environment.ProcessId;

    public bool LeaderElect { get; set; } = true;

    /// <summary>How long a leader that stops renewing keeps the Lease (a crashed leader's successor waits this long).</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    public TimeSpan LeaseRenewDeadline { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan LeaseRetryPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Hand the Lease over at once on a clean stop (false: behave like a crash, for tests).</summary>
    public bool ReleaseLeaseOnStop { get; set; } = true;

    public int Workers { get; set; } = 4;

    /// <summary>How often a migration that waits (clone starting, verification window) is looked at again.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a clone pod may take to become Running and Ready before the migration rolls back.</summary>
    public TimeSpan RestoreTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// How long the target's agent may be unreachable while it prepares a checkpoint (its pod replaced, the process
    /// OOM-killed and restarted) before the migration rolls back. The source stays held, so this is downtime.
    /// </summary>
    public TimeSpan TargetAgentGrace { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Grace period when a rollback deletes a clone; the source is resumed only once the clone is gone.</summary>
    public long CloneDeleteGraceSeconds { get; set; } = 2;

    /// <summary>
    /// The OOM guard (null: off): moves an opted-in pod off a node whose memory is forecast to run out before it does
    /// (<see cref="Triggers.OomGuard.OomGuardLoop"/>).
    /// </summary>
    public Triggers.OomGuard.OomGuardSettings? OomGuard { get; set; }
}
