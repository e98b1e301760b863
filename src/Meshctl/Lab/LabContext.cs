using System.CommandLine;
using Mesh.Contracts.Api;
using Mesh.Lab;
using Mesh.Meshctl.Cli;

namespace Mesh.Meshctl.Lab;

/// <summary>What every lab command needs: which lab, the library object for it, and the control plane.</summary>
internal static class LabContext
{
    public static readonly Option<string?> LabName = new("--lab")
    {
        Description = "Lab name: lowercase letters and digits (default: $MESH_LAB or 'mesh'); namespaces are named '<lab>-…'",
        Recursive = true,
    };

    public static Mesh.Lab.Lab Open(ParseResult parse) => Open(parse.GetValue(LabName));

    /// <summary>The lab named <paramref name="lab"/>, or $MESH_LAB, or 'mesh'.</summary>
    public static Mesh.Lab.Lab Open(string? lab) => new(LabOptions.FromEnvironment(lab), PodServerLaunch);

    /// <summary>A client that gives up quickly: the lab works on without the control plane where it can.</summary>
    public static MeshApiClient Client(ParseResult parse, TimeSpan? timeout = null) =>
        GlobalOptions.ClientFrom(parse, timeout ?? TimeSpan.FromSeconds(10));

    /// <summary>
    /// How every node agent of this lab starts (lab up and lab agent start): same log file, appended to, and a token of
    /// its own node (<c>mesh:node:NAME</c>), added to the control plane's token file (the context's, or $MESH_TOKEN_FILE),
    /// believing the CA meshctl believes.
    /// </summary>
    public static Func<LabNode, ProcessLaunch> AgentLaunch(Mesh.Lab.Lab lab, ParseResult parse, string grpcAddress)
    {
        var server = parse.GetValue(GlobalOptions.Server)!;
        var context = MeshContext.Load();
        var caFile = GlobalOptions.CaFileOf(parse, context) is { } ca ? Path.GetFullPath(ca) : null;
        var tokenFile = context.TokenFileFor(server) ?? throw new LabException(
            $"the lab gives each agent a node token through the control plane's token file, and none is known for {server}: " +
            "run ./dev up (its context file names it), or set MESH_TOKEN_FILE to the file the control plane reads (--token-file)");
        return node => LabLaunches.Agent(node, grpcAddress, Path.Combine(lab.Store.LogDirectory, $"agent-{node.Name}.log"),
            LabNodeTokens.Issue(tokenFile, lab.Names.Lab, node.Name, Path.Combine(lab.Store.LabDirectory, $"agent-{node.Name}.token")), caFile);
    }

    /// <summary>A node listener is this meshctl too, serving one TCP port in the node's netns.</summary>
    public static ProcessLaunch NodeListenerLaunch(LabNode node, int port, string logFile) => new(
        $"listener {node.Name}:{port}", LabLaunches.DotnetHost,
        [typeof(LabContext).Assembly.Location, "lab", "serve", "--netns", node.Netns, "--pod", $"node/{node.Name}", "--tcp-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)],
        logFile);

    /// <summary>Pod servers are this meshctl, run as `meshctl lab serve` by the same dotnet host.</summary>
    private static ProcessLaunch PodServerLaunch(LabPod pod, string logFile) => new(
        $"pod server {pod.Id}", LabLaunches.DotnetHost,
        [typeof(LabContext).Assembly.Location, "lab", "serve", "--netns", pod.Netns, "--pod", pod.Id], logFile);
}
