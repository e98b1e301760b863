using System.CommandLine;
using Mesh.Contracts.Api;

namespace Mesh.Meshctl.Cli;

/// <summary>Options every command understands, and how a command reaches the control plane.</summary>
public static class GlobalOptions
{
    /// <summary>The control plane's REST address. Default: $MESH_SERVER, else http://127.0.0.1:7080 (where ./dev up starts it).</summary>
    public static readonly Option<string> Server = new("--server")
    {
        Description = "Control plane address (default: $MESH_SERVER or http://127.0.0.1:7080)",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("MESH_SERVER") ?? "http://127.0.0.1:7080",
    };

    public static readonly Option<string> Output = new("--output", "-o")
    {
        Description = "Output format: table (for people) or json (for machines)",
        Recursive = true,
        DefaultValueFactory = _ => "table",
    };

    public static MeshApiClient ClientFrom(ParseResult parse) =>
        MeshApiClient.Create(new Uri(parse.GetValue(Server)!.TrimEnd('/') + "/"));

    public static bool Json(ParseResult parse) => string.Equals(parse.GetValue(Output), "json", StringComparison.OrdinalIgnoreCase);
}
