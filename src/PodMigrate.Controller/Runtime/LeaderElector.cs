using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Runtime;

/// <summary>
/// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection: the leader writes holderIdentity
/// and renewTime every <see cref="LeaderElectionOptions.RetryPeriod"/>; a candidate takes the lease when its holder is
/// empty or has not changed it for <see cref="LeaderElectionOptions.LeaseDuration"/> (measured on the candidate's own
/// clock from when it saw the last change, so clocks need not agree). Every write carries the resourceVersion read, so
/// of two candidates one wins and the other gets 409 Conflict. A leader that cannot renew within
/// <see cref="LeaderElectionOptions.RenewDeadline"/> of its last renewal stops leading before anyone else may start.
/// The Lease is the package's <see cref="V1Lease"/>, read and written through its typed <c>CoordinationV1</c> calls; each write
/// is an update of the object read with the election fields of its spec set, as client-go's LeaseLock writes it.
/// </summary>
internal sealed class LeaderElector
{
    // client-go's JitterFactor: candidates retry at RetryPeriod × [1, 2.2) so that they do not collide in step.
    private const double JitterFactor = 1.2;

    private readonly ICoordinationV1Operations _leases;
    private readonly LeaderElectionOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _lease;
    // The lease as last read or written, and when (our clock) it was last seen to change.
    private V1Lease? _observed;
    private long _observedAt;
    private volatile bool _isLeader;
    private volatile string? _observedHolder;
    // When (our clock) the attempt that acquired the lease started: the first renew deadline counts from there.
    private long _acquiredAt;

    public LeaderElector(IKubernetesApi api, LeaderElectionOptions options, TimeProvider time, ILogger<LeaderElector> logger)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _leases = api.Kubernetes.CoordinationV1;
        _options = options;
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _lease = $"{options.Namespace}/{options.LeaseName}";
    }

    public string Identity => _options.Identity;

    /// <summary>True from acquiring the lease until losing or releasing it (false before the work's token is cancelled).</summary>
    public bool IsLeader => _isLeader;

    /// <summary>The holder of the lease when it was last read or written (null: nobody, or not read yet).</summary>
    public string? ObservedLeader => _observedHolder;

    /// <summary>
    /// Campaigns; while this process leads runs <paramref name="whileLeading"/> with a token that is cancelled the moment
    /// leadership is lost (or <paramref name="cancellationToken"/> is cancelled). After a loss it waits for that work to
    /// return and campaigns again. Returns when <paramref name="cancellationToken"/> is cancelled or the work returns on
    /// its own; the lease is then released (holder cleared) so that a successor takes over at once. The work's
    /// exception, other than its cancellation, is rethrown after the release.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task> whileLeading, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(whileLeading);
        while (await AcquireAsync(cancellationToken))
        {
            if (!await LeadAsync(whileLeading, cancellationToken))
            {
                return;
            }
        }
    }

    /// <summary>Tries until this process holds the lease (true) or the token is cancelled (false).</summary>
    private async Task<bool> AcquireAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            using var deadline = new CancellationTokenSource(_options.RenewDeadline, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
            var started = _time.GetTimestamp();
            try
            {
                if (await TryAcquireOrRenewAsync(linked.Token) == Attempt.Leading)
                {
                    _acquiredAt = started;
                    _isLeader = true;
                    RuntimeLog.LeadershipAcquired(_logger, _lease, Identity, _observed?.Spec?.LeaseTransitions ?? 0);
                    return true;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return false;
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                RuntimeLog.AttemptFailed(_logger, _lease, Identity, ErrorKind.DeadlineExceeded, $"no answer within {_options.RenewDeadline}");
            }
            catch (PodMigrateException e)
            {
                RuntimeLog.AttemptFailed(_logger, _lease, Identity, e.Kind, e.Message);
            }
            var wait = _options.RetryPeriod * (1 + (Random.Shared.NextDouble() * JitterFactor));
            if (!await _time.TryDelayAsync(wait, cancellationToken))
            {
                return false;
            }
        }
        return false;
    }

    /// <summary>One term. False when the elector is done (stopped, or the work returned); true when leadership was lost.</summary>
    private async Task<bool> LeadAsync(Func<CancellationToken, Task> whileLeading, CancellationToken cancellationToken)
    {
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var work = Task.Run(() => whileLeading(leading.Token), CancellationToken.None);
        var renewal = RenewAsync(_acquiredAt, leading.Token);
        if (await Task.WhenAny(work, renewal) == renewal && await renewal is { } lostBecause)
        {
            _isLeader = false;
            RuntimeLog.LeadershipLost(_logger, _lease, Identity, lostBecause);
            await leading.CancelAsync();
            await WaitForWorkAsync(work, leading.Token);
            return true;
        }
        // Stopping, or the work returned on its own: stop renewing, let the work finish, hand the lease over.
        await leading.CancelAsync();
        await renewal;
        try
        {
            await work;
        }
        catch (OperationCanceledException) when (leading.IsCancellationRequested)
        {
        }
        finally
        {
            await ReleaseAsync();
        }
        return false;
    }

    /// <summary>Renews until leadership is lost (returns why) or the token is cancelled (returns null).</summary>
    private async Task<string?> RenewAsync(long renewedAt, CancellationToken cancellationToken)
    {
        while (true)
        {
            var remaining = _options.RenewDeadline - _time.GetElapsedTime(renewedAt);
            if (remaining <= TimeSpan.Zero)
            {
                return $"not renewed within {_options.RenewDeadline}";
            }
            if (!await _time.TryDelayAsync(remaining < _options.RetryPeriod ? remaining : _options.RetryPeriod, cancellationToken))
            {
                return null;
            }
            remaining = _options.RenewDeadline - _time.GetElapsedTime(renewedAt);
            if (remaining <= TimeSpan.Zero)
            {
                return $"not renewed within {_options.RenewDeadline}";
            }
            var started = _time.GetTimestamp();
            // The attempt may last only until the deadline: past it another candidate may already lead.
            using var deadline = new CancellationTokenSource(remaining, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
            Attempt attempt;
            try
            {
                attempt = await TryAcquireOrRenewAsync(linked.Token);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return null;
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                return $"not renewed within {_options.RenewDeadline}";
            }
            catch (PodMigrateException e)
            {
                RuntimeLog.AttemptFailed(_logger, _lease, Identity, e.Kind, e.Message);
                continue;
            }
            switch (attempt)
            {
                case Attempt.Leading:
                    renewedAt = started;
                    break;
                case Attempt.HeldByOther:
                    return $"the lease is held by {_observedHolder}";
            }
        }
    }

    private async Task WaitForWorkAsync(Task work, CancellationToken cancelled)
    {
        try
        {
            try
            {
                await work.WaitAsync(_options.RenewDeadline, _time, CancellationToken.None);
            }
            catch (TimeoutException)
            {
                RuntimeLog.WaitingForLeadingWork(_logger, _lease, Identity);
                await work;
            }
        }
        catch (OperationCanceledException) when (cancelled.IsCancellationRequested)
        {
        }
    }

    private async Task<Attempt> TryAcquireOrRenewAsync(CancellationToken cancellationToken)
    {
        var now = MicroTime.Of(_time.GetUtcNow());
        V1Lease current;
        if (_isLeader && _observed is not null)
        {
            // The leader renews the lease it wrote last without reading it first; a 409 tells it someone else wrote since.
            current = _observed;
        }
        else
        {
            try
            {
                current = await ReadAsync(cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                var lease = new V1Lease
                {
                    ApiVersion = V1Lease.KubeGroup + "/" + V1Lease.KubeApiVersion,
                    Kind = V1Lease.KubeKind,
                    Metadata = new V1ObjectMeta { Name = _options.LeaseName, NamespaceProperty = _options.Namespace },
                    Spec = new V1LeaseSpec
                    {
                        HolderIdentity = Identity,
                        LeaseDurationSeconds = LeaseDurationSeconds,
                        AcquireTime = now,
                        RenewTime = now,
                        LeaseTransitions = 0,
                    },
                };
                try
                {
                    Observe(await KubeApiErrors.CallAsync(
                        token => _leases.CreateNamespacedLeaseAsync(lease, _options.Namespace, cancellationToken: token), $"create lease {_lease}", cancellationToken));
                    return Attempt.Leading;
                }
                catch (PodMigrateException conflict) when (conflict.Kind == ErrorKind.AlreadyExists)
                {
                    return Attempt.Failed;
                }
            }
            Observe(current);
        }
        var spec = current.Spec ?? new V1LeaseSpec();
        var holder = spec.HolderIdentity;
        var mine = holder == Identity;
        if (!string.IsNullOrEmpty(holder) && !mine && !Expired(spec))
        {
            return Attempt.HeldByOther;
        }
        try
        {
            Observe(await UpdateAsync(current, new V1LeaseSpec
            {
                HolderIdentity = Identity,
                LeaseDurationSeconds = LeaseDurationSeconds,
                AcquireTime = mine ? spec.AcquireTime ?? now : now,
                RenewTime = now,
                LeaseTransitions = mine ? spec.LeaseTransitions ?? 0 : (spec.LeaseTransitions ?? 0) + 1,
                PreferredHolder = spec.PreferredHolder,
                Strategy = spec.Strategy,
            }, cancellationToken));
            return Attempt.Leading;
        }
        catch (PodMigrateException e) when (e.IsConflict())
        {
            // Someone else wrote first (another candidate won, or the holder renewed): read again next time.
            _observed = null;
            return Attempt.Failed;
        }
    }

    /// <summary>
    /// Hands the lease over as client-go does: holder empty, duration 1 s. It reads the lease first rather than writing over
    /// the copy it last saw: a renewal cancelled by the stop may have been applied by the server after all (the answer
    /// lost with the cancellation), and that copy's resourceVersion would then be stale: a 409, and the lease held until
    /// it expires. A conflict here (a write between our read and our write) is read again, a few times.
    /// </summary>
    private async Task ReleaseAsync()
    {
        if (!_isLeader)
        {
            return;
        }
        _isLeader = false;
        if (!_options.ReleaseOnCancel)
        {
            return;
        }
        // Its own short deadline: the caller's token is already cancelled, and a stuck API server must not hold up the exit.
        using var timeout = new CancellationTokenSource(_options.RenewDeadline, _time);
        const int attempts = 3;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var current = await ReadAsync(timeout.Token);
                Observe(current);
                if (current.Spec?.HolderIdentity != Identity)
                {
                    // Someone else holds it already (our renewals had lapsed): nothing of ours to release.
                    return;
                }
                var now = MicroTime.Of(_time.GetUtcNow());
                Observe(await UpdateAsync(current, new V1LeaseSpec
                {
                    HolderIdentity = "",
                    LeaseDurationSeconds = 1,
                    AcquireTime = now,
                    RenewTime = now,
                    LeaseTransitions = current.Spec.LeaseTransitions,
                    PreferredHolder = current.Spec.PreferredHolder,
                    Strategy = current.Spec.Strategy,
                }, timeout.Token));
                RuntimeLog.LeaseReleased(_logger, _lease, Identity);
                return;
            }
            catch (PodMigrateException e) when (e.IsConflict() && attempt < attempts)
            {
            }
            catch (Exception e) when (e is PodMigrateException or OperationCanceledException)
            {
                RuntimeLog.ReleaseFailed(_logger, e, _lease, Identity);
                return;
            }
        }
    }

    private Task<V1Lease> ReadAsync(CancellationToken cancellationToken)
        => KubeApiErrors.CallAsync(token => _leases.ReadNamespacedLeaseAsync(_options.LeaseName, _options.Namespace, cancellationToken: token),
            $"get lease {_lease}", cancellationToken);

    /// <summary>
    /// PUT of the lease read with <paramref name="spec"/> as its spec: the read's resourceVersion makes it fail with a conflict
    /// when someone wrote since. The rest of the object goes back as the package's model holds it; a spec field newer than
    /// the model would be lost, as it is with client-go's LeaseLock, which also rebuilds the whole spec from its record.
    /// </summary>
    private Task<V1Lease> UpdateAsync(V1Lease read, V1LeaseSpec spec, CancellationToken cancellationToken)
    {
        var updated = new V1Lease { ApiVersion = read.ApiVersion, Kind = read.Kind, Metadata = read.Metadata, Spec = spec };
        return KubeApiErrors.CallAsync(token => _leases.ReplaceNamespacedLeaseAsync(updated, _options.LeaseName, _options.Namespace, cancellationToken: token),
            $"update lease {_lease}", cancellationToken);
    }

    private int LeaseDurationSeconds => (int)Math.Ceiling(_options.LeaseDuration.TotalSeconds);

    private bool Expired(V1LeaseSpec spec)
        => _time.GetElapsedTime(_observedAt) > TimeSpan.FromSeconds(spec.LeaseDurationSeconds ?? LeaseDurationSeconds);

    private void Observe(V1Lease lease)
    {
        if (_observed?.Metadata?.ResourceVersion != lease.Metadata?.ResourceVersion)
        {
            _observedAt = _time.GetTimestamp();
        }
        _observed = lease;
        var holder = string.IsNullOrEmpty(lease.Spec?.HolderIdentity) ? null : lease.Spec.HolderIdentity;
        if (holder != _observedHolder)
        {
            _observedHolder = holder;
            if (holder is not null && holder != Identity)
            {
                RuntimeLog.LeaderObserved(_logger, _lease, holder);
            }
        }
    }

    private enum Attempt
    {
        Leading,
        HeldByOther,
        Failed,
    }
}

/// <summary>Which Lease, who we are, and client-go's timing (defaults 15 s / 10 s / 2 s).</summary>
internal sealed class LeaderElectionOptions
{
    public required string Namespace { get; init; }

    public required string LeaseName { get; init; }

    /// <summary>Unique per process, e.g. the pod name plus a random suffix (a restarted pod must not pass for its predecessor).</summary>
    public required string Identity { get; init; }

    /// <summary>How long candidates wait, after the lease last changed, before taking it. Written as whole seconds.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>A leader that has not renewed for this long stops leading; must be shorter than the lease duration.</summary>
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the leader renews and candidates try.</summary>
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Clear the holder when stopping, so that a successor need not wait for the lease to expire.</summary>
    public bool ReleaseOnCancel { get; init; } = true;

    public void Validate()
    {
        if (string.IsNullOrEmpty(Namespace) || string.IsNullOrEmpty(LeaseName) || string.IsNullOrEmpty(Identity))
        {
            throw PodMigrateException.InvalidArgument("leader election needs a lease namespace, a lease name and an identity");
        }
        if (RetryPeriod <= TimeSpan.Zero)
        {
            throw PodMigrateException.InvalidArgument($"leader election RetryPeriod must be positive ({RetryPeriod})");
        }
        if (RenewDeadline <= RetryPeriod * 1.2)
        {
            throw PodMigrateException.InvalidArgument($"leader election RenewDeadline ({RenewDeadline}) must be longer than 1.2 × RetryPeriod ({RetryPeriod})");
        }
        if (LeaseDuration <= RenewDeadline || LeaseDuration < TimeSpan.FromSeconds(1))
        {
            throw PodMigrateException.InvalidArgument($"leader election LeaseDuration ({LeaseDuration}) must be at least 1 s and longer than RenewDeadline ({RenewDeadline})");
        }
    }
}
