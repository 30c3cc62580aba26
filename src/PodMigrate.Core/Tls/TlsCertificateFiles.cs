using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Tls;

/// <summary>
/// TLS material read from files that may change under a running process (a mounted Secret is updated by the kubelet,
/// cert-manager rotates it): <see cref="Current"/> re-reads the files at most once per <see cref="CheckInterval"/>
/// and swaps in the new material when their content changed. A set that does not load (a rotation caught halfway,
/// a key that does not match) is logged and the previous material stays in use.
/// </summary>
public sealed class TlsCertificateFiles : IDisposable
{
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(10);

    private readonly string _certificateFile;
    private readonly string _keyFile;
    private readonly string _caFile;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly List<TlsCertificates> _retired = [];
    private TlsCertificates _current;
    private byte[] _fingerprint;
    private DateTimeOffset _checkedAt;

    /// <summary>Loads the files now: a missing or unreadable file fails here, at start-up, not at the first handshake.</summary>
    public TlsCertificateFiles(string certificateFile, string keyFile, string caFile, TimeProvider time, ILogger logger)
    {
        _certificateFile = certificateFile;
        _keyFile = keyFile;
        _caFile = caFile;
        _time = time;
        _logger = logger;
        (_current, _fingerprint) = Load();
        _checkedAt = _time.GetUtcNow();
    }

    /// <summary>The files of a TLS directory (<see cref="TlsFileNames"/>).</summary>
    public static TlsCertificateFiles ForDirectory(string directory, TimeProvider time, ILogger logger)
        => new(Path.Combine(directory, TlsFileNames.Certificate), Path.Combine(directory, TlsFileNames.Key), Path.Combine(directory, TlsFileNames.CaBundle), time, logger);

    public string Description => $"{_certificateFile}, {_keyFile}, {_caFile}";

    public TlsCertificates Current
    {
        get
        {
            lock (_lock)
            {
                var now = _time.GetUtcNow();
                // A clock set back must not stop the checks until it catches up.
                if (now - _checkedAt >= CheckInterval || now < _checkedAt)
                {
                    _checkedAt = now;
                    Refresh();
                }
                return _current;
            }
        }
    }

    private void Refresh()
    {
        byte[] fingerprint;
        try
        {
            fingerprint = Fingerprint();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TlsLog.ReloadFailed(_logger, Description, e.Message);
            return;
        }
        if (fingerprint.AsSpan().SequenceEqual(_fingerprint))
        {
            return;
        }
        try
        {
            var (loaded, loadedFingerprint) = Load();
            // Connections that are handshaking may still hold the old material: it is released with this object.
            _retired.Add(_current);
            (_current, _fingerprint) = (loaded, loadedFingerprint);
            TlsLog.Reloaded(_logger, Description, loaded.Certificate.Subject, loaded.Certificate.NotAfter);
        }
        catch (PodMigrateException e)
        {
            TlsLog.ReloadFailed(_logger, Description, e.Message);
        }
    }

    private (TlsCertificates Certificates, byte[] Fingerprint) Load()
    {
        // Fingerprint first: if the files change in between, the next check sees a difference and loads again.
        var fingerprint = Fingerprint();
        return (TlsCertificates.LoadFiles(_certificateFile, _keyFile, _caFile), fingerprint);
    }

    private byte[] Fingerprint()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in (ReadOnlySpan<string>)[_certificateFile, _keyFile, _caFile])
        {
            hash.AppendData(File.Exists(file) ? File.ReadAllBytes(file) : []);
            hash.AppendData([0]);
        }
        return hash.GetHashAndReset();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _current.Dispose();
            foreach (var retired in _retired)
            {
                retired.Dispose();
            }
            _retired.Clear();
        }
    }
}

internal static partial class TlsLog
{
    [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "TLS material reloaded from {Files}: {Subject}, valid until {NotAfter:u}")]
    public static partial void Reloaded(ILogger logger, string files, string subject, DateTime notAfter);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "TLS material in {Files} changed but does not load; keeping the previous one: {Reason}")]
    public static partial void ReloadFailed(ILogger logger, string files, string reason);
}
