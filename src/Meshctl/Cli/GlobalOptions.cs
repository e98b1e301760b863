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

    public static readonly Option<string> Output = CreateOutput();

    /// <summary>Short for <c>-o json</c>, as scripts often spell it.</summary>
    public static readonly Option<bool> JsonFlag = new("--json")
    {
        Description = "Same as -o json",
        Recursive = true,
    };

    private static Option<string> CreateOutput()
    {
        var output = new Option<string>("--output", "-o")
        {
            Description = "Output format: table (for people) or json (for machines)",
            Recursive = true,
            DefaultValueFactory = _ => "table",
        };
        output.AcceptOnlyFromAmong("table", "json");
        return output;
    }

    public static MeshApiClient ClientFrom(ParseResult parse) =>
        MeshApiClient.Create(new Uri(parse.GetValue(Server)!.TrimEnd('/') + "/"));

    public static bool Json(ParseResult parse) => parse.GetValue(JsonFlag) || parse.GetValue(Output) == "json";
}
