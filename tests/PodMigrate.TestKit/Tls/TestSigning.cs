using System.Net;
using PodMigrate.Core.Tls;

namespace PodMigrate.TestKit.Tls;

/// <summary>
/// The checkpoint-signing material of a test run, like a cluster's: one CA, and per node an agent directory (tls.crt,
/// tls.key, ca.crt) made by the same code as `podmigrate certs generate`, so every test agent signs what it publishes
/// and trusts what the others signed. The CA's key lives only in this process; the files go when it exits.
/// </summary>
public sealed class TestSigning
{
    private static readonly Lazy<TestSigning> LazyShared = new(() => new TestSigning(), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly CertificateAuthority _ca;
    private readonly Lock _lock = new();

    private TestSigning()
    {
        _ca = CertificateAuthority.Create("PodMigrate test signing CA", TimeSpan.FromDays(2));
        Root = Directory.CreateTempSubdirectory("pm-test-signing-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(Root, recursive: true);
    }

    /// <summary>The one CA of this test process: agents of different tests trust each other, as agents of one cluster do.</summary>
    public static TestSigning Shared => LazyShared.Value;

    public string Root { get; }

    public string CaPem => _ca.CertificatePem;

    /// <summary>The agent directory of <paramref name="node"/> (made on first use): its certificate signs, its ca.crt is trusted.</summary>
    public string AgentDirectory(string node)
    {
        var directory = Path.Combine(Root, node);
        lock (_lock)
        {
            if (!File.Exists(Path.Combine(directory, TlsFileNames.CaBundle)))
            {
                _ca.IssueServer(node, [node, "localhost"], [IPAddress.Loopback], TimeSpan.FromDays(1))
                    .WriteDirectoryAsync(directory, _ca.CertificatePem, CancellationToken.None).GetAwaiter().GetResult();
            }
        }
        return directory;
    }
}
