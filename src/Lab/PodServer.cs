using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Runtime.InteropServices;
using Mesh.Contracts.Netns;

namespace Mesh.Lab;

public enum LabProtocol { Tcp, Udp }

/// <summary>A port a lab pod serves, with the name policies use for it (toPorts.port: "serve-80-tcp").</summary>
public sealed record NamedPort(string Name, int Port, LabProtocol Protocol);

/// <summary>
/// The workload inside every lab pod: TCP and UDP on ports 80 and 81. TCP echoes each line back, except that a
/// request that starts like HTTP gets a small HTTP answer (so L7 rules have something to judge); UDP echoes each
/// datagram. The sockets are made inside the pod's netns and served from ordinary threads: a socket belongs to
/// the namespace it was created in, whatever thread later uses it.
/// </summary>
public sealed class PodServer : IAsyncDisposable
{
    public static readonly IReadOnlyList<NamedPort> NamedPorts =
    [
        new("serve-80-tcp", 80, LabProtocol.Tcp),
        new("serve-80-udp", 80, LabProtocol.Udp),
        new("serve-81-tcp", 81, LabProtocol.Tcp),
        new("serve-81-udp", 81, LabProtocol.Udp),
    ];

    private readonly CancellationTokenSource stop = new();
    private readonly List<Socket> sockets;
    private readonly Task serving;
    private readonly string identity;

    private PodServer(List<Socket> sockets, string identity)
    {
        this.sockets = sockets;
        this.identity = identity;
        serving = Task.WhenAll(sockets.Select(s => s.SocketType == SocketType.Stream ? AcceptLoop(s) : EchoLoop(s)));
    }

    /// <summary>Binds every named port inside <paramref name="netns"/> (null = this process's namespace) and serves.</summary>
    public static PodServer Start(string? netns, string identity, IReadOnlyList<NamedPort>? ports = null)
    {
        var bound = NetworkNamespace.Run(netns, () =>
        {
            var list = new List<Socket>();
            try
            {
                // UDP first: callers treat "TCP answers" as ready, and by then every port is bound.
                foreach (var port in (ports ?? NamedPorts).OrderBy(p => p.Protocol == LabProtocol.Tcp))
                    list.Add(Bind(port));
            }
            catch
            {
                foreach (var s in list) s.Dispose();
                throw;
            }
            return list;
        });
        return new PodServer(bound, identity);
    }

    /// <summary>
    /// The body of a pod server process: serves until SIGTERM or SIGINT and returns the exit code. Everything it
    /// runs lives in this assembly, so a host may call it from anywhere, even a module initializer.
    /// </summary>
    public static int RunUntilTerminated(string? netns, string identity)
    {
        using var stopping = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(
            PosixSignal.SIGTERM, c => { c.Cancel = true; stopping.Cancel(); });
        using var interrupt = PosixSignalRegistration.Create(
            PosixSignal.SIGINT, c => { c.Cancel = true; stopping.Cancel(); });
        PodServer server;
        try { server = Start(netns, identity); }
        catch (Exception e) when (e is SocketException or IOException)
        {
            Console.Error.WriteLine($"pod server {identity}: cannot serve in netns {netns}: {e.Message}");
            return 1;
        }
        Console.WriteLine($"pod server {identity} serving {string.Join(", ", NamedPorts.Select(p => p.Name))} in netns {netns ?? "(own)"}");
        stopping.Token.WaitHandle.WaitOne();
        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Console.WriteLine($"pod server {identity} stopped");
        return 0;
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        foreach (var s in sockets) s.Dispose();
        try { await serving; } catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
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

    private async Task AcceptLoop(Socket listener)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            _ = Task.Run(() => Converse(client, ((IPEndPoint)listener.LocalEndPoint!).Port));
        }
    }

    private async Task Converse(Socket client, int port)
    {
        using var _ = client;
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
        idle.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            await using var stream = new NetworkStream(client, ownsSocket: false);
            using var reader = new StreamReader(stream, Encoding.UTF8, false, 4096, leaveOpen: true);
            var first = await reader.ReadLineAsync(idle.Token);
            if (first is null) return;
            if (LooksLikeHttp(first))
            {
                await AnswerHttp(stream, reader, first, port, idle.Token);
                return;
            }
            for (var line = first; line is not null; line = await reader.ReadLineAsync(idle.Token))
                await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), idle.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException) { }
    }

    private async Task AnswerHttp(NetworkStream stream, StreamReader reader, string requestLine, int port, CancellationToken ct)
    {
        while (await reader.ReadLineAsync(ct) is { Length: > 0 }) { }
        var body = $"{identity} port {port}: {requestLine}\n";
        var answer = $"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
        await stream.WriteAsync(Encoding.UTF8.GetBytes(answer), ct);
    }

    private static bool LooksLikeHttp(string line) =>
        line.EndsWith(" HTTP/1.1", StringComparison.Ordinal) || line.EndsWith(" HTTP/1.0", StringComparison.Ordinal);

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
