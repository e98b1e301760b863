using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Netns;
using Mesh.NodeAgent.Attachments;
using Mesh.NodeAgent.Datapath;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Cni;

/// <summary>
/// A node as a container runtime sees it: a node namespace (forwarding on) where mesh-cni runs, pod namespaces the
/// test creates, host-local IPAM with a private data directory and a pool of <see cref="PoolSize"/> addresses, and the
/// agent's CNI socket served in this process by the agent's own server over <paramref name="hold"/>. Dispose removes
/// the namespaces (and with them every veth), the files and the socket.
/// </summary>
internal sealed class CniNode : IAsyncDisposable
{
    public const int PoolSize = 2;
    public const string Subnet = "10.231.0.0/24";

    private readonly List<string> namespaces = [];
    private readonly string prefix = $"mcn{Guid.NewGuid().ToString("N")[..8]}";
    private CniServer? server;

    public string Node { get; }
    public string Directory { get; }
    public string Socket => Path.Combine(Directory, "cni.sock");
    public string IpamData => Path.Combine(Directory, "ipam");
    public string StateFile => AttachmentStore.PathFor(Directory);
    public List<string> Log { get; } = [];

    private CniNode()
    {
        Node = $"{prefix}-node";
        Directory = System.IO.Directory.CreateTempSubdirectory("mesh-cni-").FullName;
    }

    /// <summary>The node namespace, and an agent socket when <paramref name="hold"/> is given (else none answers).</summary>
    public static async Task<CniNode> StartAsync(Func<string, IInterfaceHold>? hold)
    {
        var node = new CniNode();
        try
        {
            node.AddNamespace(node.Node);
            IpRun("netns", "exec", node.Node, "sysctl", "-qw", "net.ipv4.ip_forward=1");
            if (hold is not null) await node.ServeAsync(hold(node.Node));
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    /// <summary>Serves the CNI socket (again, as a restarted agent does) from the attachments in the state file.</summary>
    public async Task ServeAsync(IInterfaceHold hold)
    {
        if (server is not null) await server.DisposeAsync();
        var attachments = new PodAttachments(AttachmentStore.Open(StateFile), hold, line => { lock (Log) Log.Add(line); });
        attachments.Restore();
        server = await CniServer.StartAsync(Socket, attachments, TestContext.Current.CancellationToken);
    }

    public async Task StopServingAsync()
    {
        if (server is not null) await server.DisposeAsync();
        server = null;
    }

    /// <summary>A pod's namespace, as the runtime makes it before ADD; returns its name.</summary>
    public string AddPodNamespace(string pod)
    {
        var name = $"{prefix}-{pod}";
        AddNamespace(name);
        IpRun("-n", name, "link", "set", "lo", "up");
        return name;
    }

    public string Config(string? agentSocket = null) =>
        CniRuntime.Config(agentSocket ?? Socket, Subnet, "10.231.0.10", $"10.231.0.{9 + PoolSize}", IpamData);

    /// <summary>mesh-cni in the node namespace for pod default/<paramref name="pod"/> (container id: the test's prefix and the pod).</summary>
    public CniOutcome Invoke(string command, string? podNetns, string pod, string? config = null, Action<IDictionary<string, string?>>? environment = null) =>
        CniRuntime.Invoke(Node, command, podNetns is null ? null : NetworkNamespace.PathOf(podNetns), "default", pod, $"{prefix}-{pod}",
            config ?? Config(), environment: environment);

    public static string HostInterface(string pod) => PodInterface.HostName("default", pod);

    public bool NodeHas(string device) => PodWiring.Exists(NetworkNamespace.PathOf(Node), device);

    public string NodeRoutes() => IpRun("-n", Node, "route", "show");

    /// <summary>A TCP echo server in <paramref name="podNetns"/> on <paramref name="ip"/>:<paramref name="port"/>, closed at Dispose.</summary>
    public void Listen(string podNetns, IPAddress ip, int port)
    {
        var listener = NetworkNamespace.Run(podNetns, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(ip, port));
            s.Listen(8);
            return s;
        });
        listeners.Add(listener);
        new Thread(() =>
        {
            try
            {
                while (true)
                {
                    var client = listener.Accept();
                    new Thread(() =>
                    {
                        using (client)
                        {
                            var buffer = new byte[64];
                            try { for (int n; (n = client.Receive(buffer)) > 0;) client.Send(buffer, n, SocketFlags.None); }
                            catch (SocketException) { }
                        }
                    }) { IsBackground = true }.Start();
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        }) { IsBackground = true }.Start();
    }

    private readonly List<Socket> listeners = [];

    /// <summary>Connects from one pod to an address and has "ping" echoed within a second.</summary>
    public static bool Converses(string fromNetns, IPAddress to, int port) => NetworkNamespace.Run(fromNetns, () =>
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
        try { s.Connect(new IPEndPoint(to, port)); }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress) { }
        if (!s.Poll((int)TimeSpan.FromSeconds(1).TotalMicroseconds, SelectMode.SelectWrite)
            || (int)s.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)! != 0) return false;
        s.Blocking = true;
        s.ReceiveTimeout = 1000;
        try
        {
            s.Send("ping"u8);
            return s.Receive(new byte[16]) == 4;
        }
        catch (SocketException) { return false; }
    });

    public async ValueTask DisposeAsync()
    {
        await StopServingAsync();
        foreach (var l in listeners) l.Dispose();
        foreach (var ns in namespaces) IpTry("netns", "del", ns);
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    private void AddNamespace(string name)
    {
        IpRun("netns", "add", name);
        namespaces.Add(name);
    }

    private static string IpRun(params string[] args)
    {
        var (code, stdout, stderr) = Ip(args);
        return code == 0 ? stdout : throw new InvalidOperationException($"ip {string.Join(' ', args)}: exit {code}: {stderr}");
    }

    private static void IpTry(params string[] args) => Ip(args);

    private static (int, string, string) Ip(string[] args)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var error = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, error.Result.Trim());
    }
}

/// <summary>An agent side that holds nothing: it records what it was asked to hold.</summary>
internal sealed class RecordingHold : IInterfaceHold
{
    public HashSet<string> Held { get; } = [];

    public bool Hold(string interfaceName)
    {
        lock (Held) Held.Add(interfaceName);
        return false;
    }

    public void Release(string interfaceName)
    {
        lock (Held) Held.Remove(interfaceName);
    }

    public bool IsHeld(string interfaceName) => false;
}
