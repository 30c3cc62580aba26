using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Processes;

/// <summary>What to run: an executable and its argv (never a shell string), with optional environment and limits.</summary>
public sealed record ProcessSpec(string FileName, IReadOnlyList<string> Arguments)
{
    public string? WorkingDirectory { get; init; }

    /// <summary>Variables to set (or, with a null value, to remove) on top of the current environment.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    /// <summary>Kills the process tree and fails with DeadlineExceeded when it runs longer.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Characters kept per output stream; beyond it the oldest output is dropped (the tail is what explains a failure).</summary>
    public int MaxCapturedChars { get; init; } = 256 * 1024;

    /// <summary>The command line as one readable string, for messages only.</summary>
    public string DisplayCommand => string.Join(' ', new[] { FileName }.Concat(Arguments).Select(Quote));

    private static string Quote(string arg)
        => arg.Length > 0 && !arg.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '\\') ? arg : $"'{arg.Replace("'", "'\\''", StringComparison.Ordinal)}'";
}

/// <summary>How a process ended and what it printed.</summary>
public sealed record ProcessResult(ProcessSpec Spec, int ExitCode, string StandardOutput, string StandardError, TimeSpan Elapsed)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Throws a <see cref="PodMigrateException"/> naming the argv and exit code (stderr in Details) unless the process exited 0.</summary>
    public ProcessResult EnsureSuccess()
    {
        if (Succeeded)
        {
            return this;
        }

        throw new PodMigrateException(
            ErrorKind.Internal,
            $"`{Spec.DisplayCommand}` exited with code {ExitCode}",
            details: StandardError.Length > 0 ? StandardError : StandardOutput);
    }
}

/// <summary>
/// The one way PodMigrate runs a command-line tool (where a CLI is the interface, e.g. gcc): argv through
/// ArgumentList, stdout/stderr captured concurrently, and the whole process tree killed on timeout or cancellation.
/// </summary>
public static class ProcessRunner
{
    private static readonly TimeSpan KillGrace = TimeSpan.FromSeconds(5);

    /// <summary>Runs to completion and returns the result whatever the exit code; see <see cref="RunCheckedAsync"/>.</summary>
    public static async Task<ProcessResult> RunAsync(ProcessSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var startInfo = new ProcessStartInfo(spec.FileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in spec.Arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        if (spec.WorkingDirectory is not null)
        {
            startInfo.WorkingDirectory = spec.WorkingDirectory;
        }

        foreach (var (name, value) in spec.Environment)
        {
            if (value is null)
            {
                startInfo.Environment.Remove(name);
            }
            else
            {
                startInfo.Environment[name] = value;
            }
        }

        using var process = new Process { StartInfo = startInfo };
        var stopwatch = Stopwatch.StartNew();
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            throw new PodMigrateException(ErrorKind.NotFound, $"cannot start `{spec.DisplayCommand}`: {e.Message}", e);
        }

        // Nothing is ever fed to a tool: EOF at once keeps one that reads stdin from waiting forever.
        process.StandardInput.Close();
        var stdout = new TailBuffer(spec.MaxCapturedChars);
        var stderr = new TailBuffer(spec.MaxCapturedChars);
        var pumpOut = PumpAsync(process.StandardOutput, stdout);
        var pumpErr = PumpAsync(process.StandardError, stderr);

        using var timeout = new CancellationTokenSource(spec.Timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            await process.WaitForExitAsync(linked.Token);
        }
        catch (OperationCanceledException)
        {
            await KillTreeAsync(process);
            cancellationToken.ThrowIfCancellationRequested();
            throw new PodMigrateException(
                ErrorKind.DeadlineExceeded,
                $"`{spec.DisplayCommand}` did not finish within {spec.Timeout.TotalSeconds:0.#} s and was killed",
                details: stderr.ToString());
        }

        // Exit is known; the pipes close when the last writer (possibly a grandchild) goes away.
        await Task.WhenAll(pumpOut, pumpErr).WaitAsync(KillGrace, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return new ProcessResult(spec, process.ExitCode, stdout.ToString(), stderr.ToString(), stopwatch.Elapsed);
    }

    /// <summary>Runs to completion and throws a <see cref="PodMigrateException"/> with argv, exit code and stderr unless it exited 0.</summary>
    public static async Task<ProcessResult> RunCheckedAsync(ProcessSpec spec, CancellationToken cancellationToken)
        => (await RunAsync(spec, cancellationToken)).EnsureSuccess();

    private static async Task KillTreeAsync(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited on its own between the timeout and the kill.
        }

        using var grace = new CancellationTokenSource(KillGrace);
        await process.WaitForExitAsync(grace.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static async Task PumpAsync(StreamReader reader, TailBuffer buffer)
    {
        var chunk = new char[4096];
        int read;
        while ((read = await reader.ReadAsync(chunk, CancellationToken.None)) > 0)
        {
            buffer.Append(chunk.AsSpan(0, read));
        }
    }

    /// <summary>Keeps the last <c>capacity</c> characters written to it.</summary>
    private sealed class TailBuffer(int capacity)
    {
        private readonly StringBuilder _text = new();
        private readonly Lock _gate = new();

        public void Append(ReadOnlySpan<char> chars)
        {
            lock (_gate)
            {
                _text.Append(chars);
                if (_text.Length > capacity)
                {
                    _text.Remove(0, _text.Length - capacity);
                }
            }
        }

        public override string ToString()
        {
            lock (_gate)
            {
                return _text.ToString();
            }
        }
    }
}
