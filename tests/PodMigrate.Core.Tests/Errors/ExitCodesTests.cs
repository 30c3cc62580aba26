using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Tests.Errors;

/// <summary>The process edge both binaries (the CLI and podmigrate-agent) run their verbs through: the codes README documents.</summary>
public sealed class ExitCodesTests
{
    [Theory]
    [InlineData(ErrorKind.InvalidArgument, 2)]
    [InlineData(ErrorKind.NotFound, 3)]
    [InlineData(ErrorKind.FailedPrecondition, 4)]
    [InlineData(ErrorKind.Unavailable, 5)]
    [InlineData(ErrorKind.DataLoss, 6)]
    [InlineData(ErrorKind.ResourceExhausted, 7)]
    [InlineData(ErrorKind.DeadlineExceeded, 8)]
    [InlineData(ErrorKind.AlreadyExists, 9)]
    [InlineData(ErrorKind.PermissionDenied, 10)]
    [InlineData(ErrorKind.Cancelled, 130)]
    [InlineData(ErrorKind.Internal, 1)]
    [InlineData(ErrorKind.Aborted, 1)]
    [InlineData(ErrorKind.Unimplemented, 1)]
    public async Task A_typed_error_becomes_its_message_and_the_code_of_its_kind(ErrorKind kind, int code)
    {
        using var error = new StringWriter();

        var exit = await ExitCodes.RunAsync(() => throw new PodMigrateException(kind, "checkpoint c1: it went wrong", details: "criu: line 1"), error, CancellationToken.None);

        exit.ShouldBe(code);
        ExitCodes.For(kind).ShouldBe(code);
        error.ToString().ShouldBe($"error: checkpoint c1: it went wrong{Environment.NewLine}criu: line 1{Environment.NewLine}");
    }

    [Fact]
    public async Task The_bodys_own_code_is_returned_and_nothing_is_printed()
    {
        using var error = new StringWriter();

        (await ExitCodes.RunAsync(() => Task.FromResult(ExitCodes.Unavailable), error, CancellationToken.None)).ShouldBe(ExitCodes.Unavailable);
        error.ToString().ShouldBeEmpty();
    }

    [Fact]
    public async Task Cancelled_by_its_token_it_exits_130()
    {
        using var error = new StringWriter();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        // The body honours the token (as every command body does): cancelled already, it throws at once.
        var exit = await ExitCodes.RunAsync(() =>
        {
            cancelled.Token.ThrowIfCancellationRequested();
            return Task.FromResult(ExitCodes.Ok);
        }, error, cancelled.Token);

        exit.ShouldBe(ExitCodes.Cancelled);
        error.ToString().ShouldBe($"cancelled{Environment.NewLine}");
    }

    [Fact]
    public async Task A_cancellation_the_token_did_not_ask_for_is_not_taken_for_ctrl_c()
    {
        using var error = new StringWriter();

        await Should.ThrowAsync<OperationCanceledException>(
            () => ExitCodes.RunAsync(() => throw new OperationCanceledException("a timeout inside"), error, CancellationToken.None));
    }
}
