using System.CommandLine;
using Mesh.Contracts.Api;
using Mesh.Meshctl.Cli;
using Mesh.NodeAgent.Lab;

namespace Mesh.Meshctl.Lab;

/// <summary>What every lab command needs: which lab, the library object for it, and the control plane.</summary>
internal static class LabContext
{
    public static readonly Option<string?> LabName = new("--lab")
    {
        Description = "Lab name: lowercase letters and digits (default: $MESH_LAB or 'mesh'); namespaces are named '<lab>-…'",
        Recursive = true,
    };

    public static NodeAgent.Lab.Lab Open(ParseResult parse) =>
        new(LabOptions.FromEnvironment(parse.GetValue(LabName)), PodServerLaunch);

    /// <summary>A client that gives up quickly: the lab works on without the control plane where it can.</summary>
    public static MeshApiClient Client(ParseResult parse, TimeSpan? timeout = null) =>
        MeshApiClient.Create(new Uri(parse.GetValue(GlobalOptions.Server)!.TrimEnd('/') + "/"), timeout ?? TimeSpan.FromSeconds(10));

    /// <summary>Pod servers are this meshctl, run as `meshctl lab serve` by the same dotnet host.</summary>
    private static ProcessLaunch PodServerLaunch(LabPod pod, string logFile) => new(
        $"pod server {pod.Id}", LabLaunches.DotnetHost,
        [typeof(LabContext).Assembly.Location, "lab", "serve", "--netns", pod.Netns, "--pod", pod.Id], logFile);
}
