using System.CommandLine;
using PodMigrate.Cli.Commands;

// One verb (or verb group) per file under Commands/; each exposes a static Create().
var root = new RootCommand("podmigrate: checkpoint, restore and migrate running Kubernetes pods between nodes with CRIU");
foreach (var command in CommandCatalog.All())
{
    root.Subcommands.Add(command);
}
return await root.Parse(args).InvokeAsync();
