using System.CommandLine;
using Mesh.Contracts.Api;

namespace Mesh.Meshctl.Cli;

/// <summary>Options every command understands, and how a command reaches the control plane.</summary>
public static class GlobalOptions
{
    /// <summary>The control plane's REST address. Default: $MESH_SERVER, else the context file's, else https://127.0.0.1:7080.</summary>
    public static readonly Option<string> Server = new("--server")
    {
        Description = "Control plane address (default: $MESH_SERVER, the context file's server, or https://127.0.0.1:7080)",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("MESH_SERVER") ?? ContextOrEmpty().Server ?? MeshContext.DefaultServer,
    };

    /// <summary>The CA the server's certificate must come from. Default: $MESH_CA_FILE, else the context file's for its server.</summary>
    public static readonly Option<string?> CaFile = new("--ca-file")
    {
        Description = "PEM certificate of the CA that issued the control plane's certificate (default: $MESH_CA_FILE, or the context file's certificateAuthority)",
        Recursive = true,
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
            Description = "Output format: table (for people), wide (a table with more columns, where a command has them) or json (for machines)",
            Recursive = true,
            DefaultValueFactory = _ => "table",
        };
        output.AcceptOnlyFromAmong("table", "wide", "json");
        return output;
    }

    /// <summary>A client of the control plane the command names, with the token of the context file or $MESH_TOKEN.</summary>
    public static MeshApiClient ClientFrom(ParseResult parse, TimeSpan? timeout = null)
    {
        var server = parse.GetValue(Server)!;
        var context = MeshContext.Load();
        return MeshApiClient.Create(new Uri(server.TrimEnd('/') + "/"), context.TokenFor(server), timeout, CaFileOf(parse, context));
    }

    /// <summary>The CA file for the command's server: --ca-file, else $MESH_CA_FILE or the context's.</summary>
    public static string? CaFileOf(ParseResult parse, MeshContext context) => parse.GetValue(CaFile) ?? context.CaFileFor(parse.GetValue(Server)!);

    /// <summary>For defaults only: a malformed context file is reported by the command that needs its token.</summary>
    private static MeshContext ContextOrEmpty()
    {
        try { return MeshContext.Load(); }
        catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException) { return new(null, null, null); }
    }

    /// <summary>Tables with their extra columns (<c>-o wide</c>, as kubectl has it).</summary>
    public static bool Wide(ParseResult parse) => !Json(parse) && parse.GetValue(Output) == "wide";

    public static bool Json(ParseResult parse) => parse.GetValue(JsonFlag) || parse.GetValue(Output) == "json";
}
