namespace Mesh.Lab;

/// <summary>
/// Where a lab keeps its state and pins. Defaults: lab $MESH_LAB or "mesh", state in $MESH_HOME/lab (MESH_HOME
/// defaults to /var/lib/mesh), pins under /sys/fs/bpf/mesh/{lab}/{node}. Tests pick a unique lab name.
/// </summary>
public sealed record LabOptions(string Lab, string StateDirectory, string PinBase = LabOptions.DefaultPinBase)
{
    public const string DefaultPinBase = "/sys/fs/bpf/mesh";

    public static LabOptions FromEnvironment(string? lab = null) => new(
        lab ?? NonEmpty(Environment.GetEnvironmentVariable("MESH_LAB")) ?? LabNames.DefaultLab,
        Path.Combine(NonEmpty(Environment.GetEnvironmentVariable("MESH_HOME")) ?? "/var/lib/mesh", "lab"));

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}

/// <summary>Launch specs for the lab's processes, all run by the same dotnet host that runs this code.</summary>
public static class LabLaunches
{
    /// <summary>The dotnet host: this process when it is dotnet itself, else $DOTNET_HOST_PATH or "dotnet" on PATH.</summary>
    public static string DotnetHost =>
        Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? self
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    /// <summary>
    /// mesh-agent.dll in the application's own directory. The lab does not reference the agent; the application that
    /// hosts it does (meshctl, the end-to-end tests, the bench), and so ships the agent beside itself.
    /// </summary>
    public static string AgentAssembly => Path.Combine(AppContext.BaseDirectory, "mesh-agent.dll");

    /// <summary>
    /// The node agent for <paramref name="node"/>, enforcing in the node's netns, pinning under its own root and
    /// keeping its flow log and CNI socket in the node's state directory (when the lab gave it one), authenticating with the node
    /// token in <paramref name="tokenFile"/> (<see cref="LabNodeTokens"/>) and believing the CA of <paramref name="caFile"/>.
    /// </summary>
    public static ProcessLaunch Agent(LabNode node, string grpcAddress, string logFile, string tokenFile, string? caFile = null) => new(
        $"agent {node.Name}", DotnetHost,
        [
            AgentAssembly, "--node", node.Name, "--netns", node.Netns, "--control-plane", AsUrl(grpcAddress), "--pin-root", node.PinRoot,
            "--token-file", tokenFile,
            .. caFile is null ? [] : new[] { "--ca-file", caFile },
            .. node.AgentStateDirectory is { Length: > 0 } stateDir
                ? new[] { "--state-dir", stateDir, "--cni-socket", Path.Combine(stateDir, "cni.sock") }
                : [],
        ],
        logFile);

    /// <summary>The agent takes a URL; "host:port" (as people type it) means TLS to that port, as the control plane serves it.</summary>
    public static string AsUrl(string grpcAddress) =>
        grpcAddress.Contains("://", StringComparison.Ordinal) ? grpcAddress : $"https://{grpcAddress}";
}
