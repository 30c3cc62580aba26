using System.CommandLine;
using System.Reflection;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

internal static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("version", "Print the PodMigrate version");
        command.SetAction(_ =>
        {
            var version = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            Console.WriteLine($"podmigrate {version}");
            return ExitCodes.Ok;
        });
        return command;
    }
}
