using System.CommandLine;

namespace PodMigrate.Cli.Commands;

internal static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return VersionCommand.Create();
        yield return NodeCommand.Create();
        yield return ImageCommand.Create();
        yield return AgentCommand.Create();
    }
}
