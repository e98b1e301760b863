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
        MeshApiClient.Create(new Uri(parse.GetValue(GlobalOptions.Server)!.TrimEnd('/') + "/"), timeout ?? TimeSpan.FromSeconds(10));

    /// <summary>How every node agent of this lab starts (lab up and lab agent start): same log file, appended to.</summary>
    public static Func<LabNode, ProcessLaunch> AgentLaunch(Mesh.Lab.Lab lab, string grpcAddress) =>
        node => LabLaunches.Agent(node, grpcAddress, Path.Combine(lab.Store.LogDirectory, $"agent-{node.Name}.log"));

    /// <summary>Pod servers are this meshctl, run as `meshctl lab serve` by the same dotnet host.</summary>
    private static ProcessLaunch PodServerLaunch(LabPod pod, string logFile) => new(
        $"pod server {pod.Id}", LabLaunches.DotnetHost,
        [typeof(LabContext).Assembly.Location, "lab", "serve", "--netns", pod.Netns, "--pod", pod.Id], logFile);
}
