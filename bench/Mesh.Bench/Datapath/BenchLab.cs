using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mesh.Contracts.Netns;
using Mesh.Lab;

namespace Mesh.Bench.Datapath;

/// <summary>
/// One lab node with bare pods (a veth pair and an address each, no pod server), under a lab name of its own.
/// Dispose removes every namespace, pin, tagged process and state file of that lab, whatever state it got to.
/// </summary>
internal sealed class BenchLab : IDisposable
{
    private readonly Mesh.Lab.Lab lab;
    private readonly string stateDirectory;
    private readonly PosixSignalRegistration[] interrupts;
    private int tornDown;

    private BenchLab(Mesh.Lab.Lab lab, string stateDirectory, LabNode node)
    {
        this.lab = lab;
        this.stateDirectory = stateDirectory;
        Node = node;
        // Ctrl-C or a kill ends the process without running finally blocks: tear down first, then let it end.
        interrupts = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM }.Select(signal => PosixSignalRegistration.Create(signal, _ => Dispose()))];
    }

    public LabNode Node { get; }

    public string Name => lab.Names.Lab;

    /// <summary>Where this node's datapath pins its maps; removed with the lab.</summary>
    public string PinRoot => Node.PinRoot;

    public string LogDirectory => lab.Store.LogDirectory;

    public static BenchLab Create()
    {
        // A lab name has no dash and at most 12 characters; the random part keeps parallel runs apart.
        var name = "bench" + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..7];
        var stateDirectory = Path.Combine(Path.GetTempPath(), $"mesh-{name}");
        var lab = new Mesh.Lab.Lab(new LabOptions(name, stateDirectory),
            (_, _) => throw new InvalidOperationException("bench pods run no pod server"));
        try
        {
            var node = lab.Up(1).State.Nodes[0];
            return new BenchLab(lab, stateDirectory, node);
        }
        catch
        {
            TearDown(lab, stateDirectory);
            throw;
        }
    }

    /// <summary>A pod namespace joined to the node by a veth, addressed and routed like every lab pod.</summary>
    public LabPod AddPod(string name, IReadOnlyCollection<LabPod> existing)
    {
        var pod = new LabPod
        {
            Namespace = "bench", Name = name, Node = Node.Name,
            Netns = lab.Names.PodNetns("bench", name),
            Ip = LabAddressing.NextPodAddress(Node.Index, existing.Select(p => p.Ip)),
            HostInterface = lab.Names.HostInterface("bench", name),
        };
        new LabTopology(lab.Names).CreatePod(Node, pod);
        return pod;
    }

    /// <summary>The name of a pod's network namespace in this lab, which teardown removes with the rest.</summary>
    public string PodNetns(string ns, string name) => lab.Names.PodNetns(ns, name);

    /// <summary>Starts the node's agent against the control plane at <paramref name="grpcUrl"/>; its state directory (CNI socket, flow log).</summary>
    public string StartAgent(string grpcUrl, string tokenFile) =>
        lab.StartAgent(Node.Name, n => LabLaunches.Agent(n, grpcUrl, Path.Combine(LogDirectory, $"agent-{n.Name}.log"), tokenFile)).StateDirectory!;

    /// <summary>Starts a process that lives until the lab is torn down (tagged, so teardown finds it even after a crash).</summary>
    public RecordedProcess StartTagged(string role, string fileName, IReadOnlyList<string> arguments,
        IReadOnlyDictionary<string, string>? environment = null) =>
        DetachedProcess.Start(new ProcessLaunch(role, fileName, arguments, Path.Combine(LogDirectory, $"{role.Replace(' ', '-')}.log"), environment), Name);

    /// <summary>Waits until something accepts TCP on <paramref name="address"/>:<paramref name="port"/>, connecting from
    /// inside <paramref name="netns"/>.</summary>
    public static void WaitForListener(string netns, IPAddress address, int port, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            using var socket = NetworkNamespace.Run(netns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            try
            {
                using var attempt = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
                socket.ConnectAsync(new IPEndPoint(address, port), attempt.Token).AsTask().GetAwaiter().GetResult();
                return;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                if (DateTime.UtcNow > deadline)
                    throw new InvalidOperationException($"nothing listens on {address}:{port} in {netns} after {timeout.TotalSeconds:0} s: {e.Message}", e);
                Thread.Sleep(50);
            }
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref tornDown, 1) == 1) return;
        foreach (var registration in interrupts) registration.Dispose();
        TearDown(lab, stateDirectory);
    }

    private static void TearDown(Mesh.Lab.Lab lab, string stateDirectory)
    {
        var down = lab.Down();
        foreach (var problem in down.Problems) Console.Error.WriteLine($"bench lab {lab.Names.Lab}: {problem}");
        try { if (Directory.Exists(stateDirectory)) Directory.Delete(stateDirectory, recursive: true); }
        catch (IOException e) { Console.Error.WriteLine($"bench lab {lab.Names.Lab}: {e.Message}"); }
    }
}
