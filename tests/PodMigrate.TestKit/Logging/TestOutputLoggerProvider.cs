using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace PodMigrate.TestKit.Logging;

/// <summary>
/// Logs into a test's output (shown when the test fails), with the time since the test started: what the code under
/// test did is then beside the assertion that failed. Lines written after the test ended are dropped.
/// </summary>
public sealed class TestOutputLoggerProvider(ITestOutputHelper output, LogLevel minimum = LogLevel.Information) : ILoggerProvider
{
    private readonly DateTimeOffset _start = DateTimeOffset.UtcNow;
    private readonly LogLevel _minimum = minimum;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

    public void Dispose()
    {
    }

    public static ILoggerFactory Factory(ITestOutputHelper output, LogLevel minimum = LogLevel.Information)
        => LoggerFactory.Create(logging => logging.SetMinimumLevel(minimum).AddProvider(new TestOutputLoggerProvider(output, minimum)));

    private void Write(string category, LogLevel level, EventId id, string message, Exception? exception)
    {
        var elapsed = (DateTimeOffset.UtcNow - _start).TotalSeconds;
        try
        {
            output.WriteLine(FormattableString.Invariant($"{elapsed,7:F3}s {level,-11} {category}[{id.Id}] {message}{(exception is null ? "" : Environment.NewLine + exception)}"));
        }
        catch (InvalidOperationException)
        {
            // "There is no currently active test": a background loop logged after the test finished.
        }
    }

    private sealed class Logger(TestOutputLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= provider._minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                provider.Write(category, logLevel, eventId, formatter(state, exception), exception);
            }
        }
    }
}
