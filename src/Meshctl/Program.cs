using System.CommandLine;
using Mesh.Meshctl.Cli;
using Mesh.Meshctl.Commands;
using Mesh.Meshctl.Commands.Observe;
using Mesh.Meshctl.Lab;

// meshctl: the Mesh command line.
// Piped or captured output has no terminal width; keep table rows on one line for whoever reads the log.
if (Console.IsOutputRedirected) Spectre.Console.AnsiConsole.Profile.Width = 200;

var root = new RootCommand("meshctl: apply label-based network policies, watch nodes converge, and run a local lab of pods")
{
    GlobalOptions.Server,
    GlobalOptions.CaFile,
    GlobalOptions.Output,
    GlobalOptions.JsonFlag,
    PolicyCommands.Build(),
    GetCommand.Build(),
    InventoryCommands.Endpoint(),
    InventoryCommands.Identity(),
    InventoryCommands.Node(),
    InventoryCommands.Cluster(),
    InventoryCommands.Status(),
    ObserveCommand.Build(),
    MapCommand.Build(),
    ExplainCommand.Build(),
    LabCommands.Build(),
};
return await root.Parse(args).InvokeAsync();
