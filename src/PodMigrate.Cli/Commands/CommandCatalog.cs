using System.CommandLine;
using PodMigrate.Agent;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

internal static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return VersionCommand.Create();
        yield return NodeCommand.Create();
        yield return ImageCommand.Create();
        yield return AgentCommandLine.Create(ExitCodes.RunAsync);
        yield return CertsCommand.Create();
        yield return InfoCommand.Create();
        yield return CheckpointCommand.Create();
        yield return RestoreCommand.Create();
        yield return MigrateCommand.Create();
        yield return CheckpointsCommand.Create();
        yield return SourceCommands.Resume();
        yield return SourceCommands.Discard();
        yield return OperationsCommand.Create();
        yield return SoakCommand.Create();
        yield return ApiServerCommand.Create();
        yield return ControllerCommand.Create();
        yield return BenchShareCommand.AddTo(BenchRuntimeCommand.AddTo(BenchMigrationCommand.AddTo(BenchCodecsCommand.Create())));
    }
}
