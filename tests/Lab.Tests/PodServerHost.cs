using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Mesh.Lab.Tests;

/// <summary>
/// Lets this test executable double as a pod server process, so the lab tests start real, separate server
/// processes without meshctl: `dotnet Lab.Tests.dll` with MESH_LAB_TEST_POD_NETNS set serves and never
/// reaches the test runner. Only code of the library runs here (a module initializer must not wait on its own module).
/// </summary>
internal static class PodServerHost
{
    public const string NetnsVariable = "MESH_LAB_TEST_POD_NETNS";
    public const string IdentityVariable = "MESH_LAB_TEST_POD_ID";
    public const string TcpPortsVariable = "MESH_LAB_TEST_TCP_PORTS";

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255", Justification = "The test executable must turn into a pod server before the test runner starts.")]
    internal static void ServeWhenAsked()
    {
        if (Environment.GetEnvironmentVariable(NetnsVariable) is not { Length: > 0 } netns) return;
        var only = Environment.GetEnvironmentVariable(TcpPortsVariable) is { Length: > 0 } ports
            ? ports.Split(',').Select(p => Lab.NodeListenerPort(int.Parse(p, System.Globalization.CultureInfo.InvariantCulture))).ToList()
            : null;
        Environment.Exit(PodServer.RunUntilTerminated(netns, Environment.GetEnvironmentVariable(IdentityVariable) ?? netns, only));
    }

    public static ProcessLaunch Launch(LabPod pod, string logFile) => new(
        $"pod server {pod.Id}", LabLaunches.DotnetHost, [typeof(PodServerHost).Assembly.Location], logFile,
        new Dictionary<string, string> { [NetnsVariable] = pod.Netns, [IdentityVariable] = pod.Id });

    /// <summary>A node listener (`lab node listen`): the same server, on one TCP port of the node's own netns.</summary>
    public static ProcessLaunch NodeListener(LabNode node, int port, string logFile) => new(
        $"listener {node.Name}:{port}", LabLaunches.DotnetHost, [typeof(PodServerHost).Assembly.Location], logFile,
        new Dictionary<string, string>
        {
            [NetnsVariable] = node.Netns, [IdentityVariable] = $"node/{node.Name}",
            [TcpPortsVariable] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
}
