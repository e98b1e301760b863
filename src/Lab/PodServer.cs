using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Runtime.InteropServices;
using Mesh.Contracts.Netns;

namespace Mesh.Lab;

public enum LabProtocol { Tcp, Udp }

/// <summary>What a lab server answers on a TCP port; UDP ports always echo datagrams.</summary>
public enum PortService
{
    /// <summary>Each line comes back as it was sent.</summary>
    Echo,
    /// <summary>HTTP/1.1 and cleartext HTTP/2 echoing the method and path, or the line echo when the first line is not HTTP.</summary>
    HttpOrEcho,
    /// <summary>gRPC over cleartext HTTP/2: the standard health service (grpc.health.v1.Health).</summary>
    Grpc,
    /// <summary>DNS: the lab's DNS server (dnsmasq), which is asked, never probed with lines.</summary>
    Dns,
}

/// <summary>A port a lab server serves, with the name policies use for it (toPorts.port: "serve-80-tcp").</summary>
public sealed record NamedPort(string Name, int Port, LabProtocol Protocol, PortService Service = PortService.Echo)
{
    /// <summary>Whether a line sent here comes back (what <see cref="Prober"/>'s TCP probe expects).</summary>
    public bool EchoesLines => Service != PortService.Dns && (Protocol == LabProtocol.Udp || Service != PortService.Grpc);
}

/// <summary>
/// The workload inside every lab pod. TCP 80 speaks HTTP/1.1 and HTTP/2 with prior knowledge (any method and path:
/// 200 and the method and path echoed), and echoes lines to a client whose first line is not HTTP; TCP 81 echoes lines;
/// UDP 80 and 81 echo datagrams; TCP 9090 serves gRPC health (SERVING). Every socket is made inside the pod's netns
/// (a socket belongs to the namespace it was created in, whatever thread later uses it); the HTTP ports are then
/// handed to Kestrel, the others served from plain accept and receive loops.
/// </summary>
public sealed partial class PodServer : IAsyncDisposable
{
    public static readonly IReadOnlyList<NamedPort> NamedPorts =
    [
        new("serve-80-tcp", 80, LabProtocol.Tcp, PortService.HttpOrEcho),
        new("serve-80-udp", 80, LabProtocol.Udp),
        new("serve-81-tcp", 81, LabProtocol.Tcp),
        new("serve-81-udp", 81, LabProtocol.Udp),
        new("serve-9090-tcp", 9090, LabProtocol.Tcp, PortService.Grpc),
    ];

    private readonly CancellationTokenSource stop = new();
    private readonly List<Socket> sockets;
    private readonly Task serving;
    private readonly LabWebServer? web;

    private PodServer(List<Socket> sockets, LabWebServer? web)
    {
        this.sockets = sockets;
        this.web = web;
        serving = Task.WhenAll(sockets.Select(s => s.SocketType == SocketType.Stream ? AcceptLoop(s) : EchoLoop(s)));
    }

    /// <summary>Binds every port inside <paramref name="netns"/> (null = this process's namespace) and serves.</summary>
    public static PodServer Start(string? netns, string identity, IReadOnlyList<NamedPort>? ports = null)
    {
        var wanted = ports ?? NamedPorts;
        var speaksHttp = wanted.Any(p => p.Protocol == LabProtocol.Tcp && p.Service == PortService.HttpOrEcho);
        var (bound, http2) = NetworkNamespace.Run(netns, () =>
        {
            var list = new List<(NamedPort Port, Socket Socket)>();
            try
            {
                // UDP first: callers treat "TCP answers" as ready, and by then every port is bound.
                foreach (var port in wanted.OrderBy(p => p.Protocol == LabProtocol.Tcp))
                    list.Add((port, Bind(port)));
                return (list, speaksHttp ? BindUnreachable() : null);
            }
            catch
            {
                foreach (var (_, s) in list) s.Dispose();
                throw;
            }
        });
        var forWeb = bound.Where(b => b.Port.Protocol == LabProtocol.Tcp && b.Port.Service != PortService.Echo).ToList();
        LabWebServer? web = null;
        try
        {
            if (forWeb.Count > 0)
                web = LabWebServer.Start(identity, forWeb.Select(b => (b.Port, HandOver(b.Socket))).ToList(), http2 is null ? null : HandOver(http2));
        }
        catch
        {
            foreach (var (_, s) in bound) s.Dispose();
            http2?.Dispose();
            throw;
        }
        return new PodServer(bound.Except(forWeb).Select(b => b.Socket).ToList(), web);
    }

    /// <summary>
    /// A listening socket nobody can reach: an abstract unix socket (no file, gone with the process), so it needs neither
    /// a port nor a loopback device that is up, which a pod made by a CNI plugin may lack.
    /// </summary>
    private static Socket BindUnreachable()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint($"\0mesh-lab-h2-{Environment.ProcessId}-{Guid.NewGuid():N}"));
        socket.Listen(1);
        return socket;
    }

    /// <summary>
    /// The body of a pod server process: serves until SIGTERM or SIGINT and returns the exit code. Everything it
    /// runs lives in this assembly and the frameworks, so a host may call it from anywhere, even a module initializer.
    /// </summary>
    public static int RunUntilTerminated(string? netns, string identity, IReadOnlyList<NamedPort>? ports = null)
    {
        using var stopping = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(
            PosixSignal.SIGTERM, c => { c.Cancel = true; stopping.Cancel(); });
        using var interrupt = PosixSignalRegistration.Create(
            PosixSignal.SIGINT, c => { c.Cancel = true; stopping.Cancel(); });
        var serves = ports ?? NamedPorts;
        PodServer server;
        try { server = Start(netns, identity, serves); }
        catch (Exception e) when (e is SocketException or IOException)
        {
            Console.Error.WriteLine($"lab server {identity}: cannot serve in netns {netns}: {e.Message}");
            return 1;
        }
        Console.WriteLine($"lab server {identity} serving {string.Join(", ", serves.Select(p => p.Name))} in netns {netns ?? "(own)"}");
        stopping.Token.WaitHandle.WaitOne();
        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Console.WriteLine($"lab server {identity} stopped");
        return 0;
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        foreach (var s in sockets) s.Dispose();
        try { await serving; } catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
        if (web is not null) await web.DisposeAsync();
        stop.Dispose();
    }

    private static Socket Bind(NamedPort port)
    {
        var socket = port.Protocol == LabProtocol.Tcp
            ? new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
            : new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        socket.Bind(new IPEndPoint(IPAddress.Any, port.Port));
        if (port.Protocol == LabProtocol.Tcp) socket.Listen(128);
        return socket;
    }

    /// <summary>
    /// A duplicate of the listening socket's descriptor for Kestrel, which closes what it is given; ours is closed
    /// here, so each descriptor has exactly one owner.
    /// </summary>
    private static ulong HandOver(Socket socket)
    {
        using (socket)
        {
            var copy = dup((int)socket.Handle);
            return copy >= 0 ? (ulong)copy : throw new IOException($"dup(listening socket): errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int dup(int fd);

    private async Task AcceptLoop(Socket listener)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            _ = Task.Run(() => EchoLines(client));
        }
    }

    private async Task EchoLines(Socket client)
    {
        using var _ = client;
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
        idle.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            await using var stream = new NetworkStream(client, ownsSocket: false);
            using var reader = new StreamReader(stream, Encoding.UTF8, false, 4096, leaveOpen: true);
            for (var line = await reader.ReadLineAsync(idle.Token); line is not null; line = await reader.ReadLineAsync(idle.Token))
                await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), idle.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException) { }
    }

    private async Task EchoLoop(Socket socket)
    {
        var buffer = new byte[65536];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, stop.Token);
                await socket.SendToAsync(buffer.AsMemory(0, received.ReceivedBytes), SocketFlags.None, received.RemoteEndPoint, stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { }
        }
    }
}
