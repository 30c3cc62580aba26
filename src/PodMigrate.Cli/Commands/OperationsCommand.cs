using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// `podmigrate operations ls|get|watch|cancel`: the agent-owned operations of a node. And how the long verbs (checkpoint,
/// restore) run: they start an operation on the agent and attach to it to show its progress; the operation belongs to
/// the agent, so a lost connection or a closed terminal does not stop it (`operations watch ID` attaches again), while
/// Ctrl-C asks the agent to cancel it.
/// </summary>
internal static class OperationsCommand
{
    public static Command Create()
    {
        var command = new Command("operations", "The long operations (checkpoint, restore, prepare) a node's agent runs");
        command.Subcommands.Add(Verb("ls", "List the operations the agent knows (running, and finished ones it still keeps)", withId: false,
            async (client, _, json, ct) =>
            {
                var list = await client.ListOperationsAsync(ct);
                if (json)
                {
                    CliCommon.WriteJson(list);
                    return;
                }
                foreach (var operation in list.Operations)
                {
                    Console.WriteLine(Line(operation));
                }
            }));
        command.Subcommands.Add(Verb("get", "Show one operation", withId: true,
            async (client, id, json, ct) => Show(await client.GetOperationAsync(id!, ct), json)));
        command.Subcommands.Add(Verb("watch", "Attach to an operation and follow it to its end", withId: true,
            async (client, id, json, ct) => Show(AgentClient.Outcome(await ProgressView.RunAsync($"operation {id}", json,
                report => client.AwaitOperationAsync(id!, o => report(o.Progress ?? new Progress()), ct))), json)));
        command.Subcommands.Add(Verb("cancel", "Ask the agent to cancel a running operation (its compensations apply)", withId: true,
            async (client, id, json, ct) => Show(await client.CancelOperationAsync(id!, ct), json)));
        return command;
    }

    /// <summary>
    /// Runs one long step as an agent-owned operation and follows it; Ctrl-C cancels it on the agent. An agent without
    /// operations gets the blocking call.
    /// </summary>
    public static async Task<Operation> RunAttachedAsync(
        AgentClient client, string title, bool quiet, StartOperationRequest request, Func<Action<Progress>, Task<Operation>> blocking, CancellationToken cancellationToken)
    {
        if (request.OperationId.Length == 0)
        {
            request.OperationId = $"cli-{title}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        }
        try
        {
            await client.StartOperationAsync(request, CancellationToken.None);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.Unimplemented)
        {
            return await ProgressView.RunAsync(title, quiet, blocking);
        }
        if (!quiet)
        {
            Console.Error.WriteLine($"{title}: operation {request.OperationId} on {client.Target} (`podmigrate operations watch {request.OperationId}` attaches again)");
        }
        try
        {
            return await ProgressView.RunAsync(title, quiet,
                report => client.AwaitOperationAsync(request.OperationId, o => report(o.Progress ?? new Progress()), cancellationToken));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await client.CancelOperationAsync(request.OperationId, bound.Token);
            Console.Error.WriteLine($"{title}: asked the agent to cancel operation {request.OperationId}");
            throw;
        }
    }

    /// <summary>
    /// A long verb once its request is read: <see cref="RunAttachedAsync"/>, then the operation's result (picked by
    /// <paramref name="result"/>) on stdout as JSON, or as <paramref name="print"/> writes it.
    /// </summary>
    public static async Task<int> RunAndPrintAsync<TResult>(
        AgentClient client, string title, bool json, StartOperationRequest request, Func<Action<Progress>, Task<Operation>> blocking,
        Func<Operation, TResult> result, Action<TResult> print, CancellationToken cancellationToken)
        where TResult : Google.Protobuf.IMessage
    {
        var value = result(await RunAttachedAsync(client, title, json, request, blocking, cancellationToken));
        if (json)
        {
            CliCommon.WriteJson(value);
        }
        else
        {
            print(value);
        }
        return ExitCodes.Ok;
    }

    private static void Show(Operation operation, bool json)
    {
        if (json)
        {
            CliCommon.WriteJson(operation);
            return;
        }
        Console.WriteLine(Line(operation));
        if (operation.Progress is { } p && !operation.Done)
        {
            Console.WriteLine($"  {p.Phase.ToString().ToLowerInvariant()}: {p.Message}{(p.BytesDone > 0 ? string.Create(CultureInfo.InvariantCulture, $" ({p.BytesDone / 1048576.0:F1} MiB)") : "")}");
        }
        if (operation.Error is { } error)
        {
            Console.WriteLine($"  error ({(Grpc.Core.StatusCode)error.Code}): {error.Message}");
        }
    }

    private static string Line(Operation operation)
    {
        var state = operation.State.ToString().Replace("Operation", "", StringComparison.Ordinal).ToLowerInvariant();
        var started = operation.Started?.ToDateTimeOffset().ToString("u", CultureInfo.InvariantCulture) ?? "-";
        return $"{operation.OperationId}\t{state}\t{started}\t{operation.Description}";
    }

    private static Command Verb(string name, string description, bool withId, Func<AgentClient, string?, bool, CancellationToken, Task> action)
    {
        var node = new Option<string?>("--node") { Description = "Node whose agent runs the operations (local cluster)" };
        var agent = new Option<string?>("--agent") { Description = "Agent address (unix:/path, http://host:port, or https://host:port with --tls-dir); overrides --node" };
        var id = new Argument<string>("id") { Description = "Operation id" };
        var output = CliCommon.OutputOption();
        var command = new Command(name, description) { node, agent, output };
        if (withId)
        {
            command.Arguments.Add(id);
        }
        var tls = new AgentTlsOptions();
        tls.AddTo(command);
        command.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            using var client = CliCommon.ConnectAgent(parse.GetValue(node), parse.GetValue(agent), tls.Read(parse));
            await action(client, withId ? parse.GetValue(id) : null, parse.IsJson(output), ct);
            return ExitCodes.Ok;
        }, ct));
        return command;
    }
}
