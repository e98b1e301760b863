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

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255", Justification = "The test executable must turn into a pod server before the test runner starts.")]
    internal static void ServeWhenAsked()
    {
        if (Environment.GetEnvironmentVariable(NetnsVariable) is { Length: > 0 } netns)
            Environment.Exit(PodServer.RunUntilTerminated(netns, Environment.GetEnvironmentVariable(IdentityVariable) ?? netns));
    }

    public static ProcessLaunch Launch(LabPod pod, string logFile) => new(
        $"pod server {pod.Id}", LabLaunches.DotnetHost, [typeof(PodServerHost).Assembly.Location], logFile,
        new Dictionary<string, string> { [NetnsVariable] = pod.Netns, [IdentityVariable] = pod.Id });
}
