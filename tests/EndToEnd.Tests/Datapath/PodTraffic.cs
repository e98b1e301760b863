using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Contracts.Netns;
using Mesh.Lab;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// Real TCP between lab pods, made by the test process itself: each socket is created inside the source pod's
/// network namespace and then used from any thread. A policy drop shows as a connect or an echo that never comes.
/// </summary>
internal static class PodTcp
{
    /// <summary>A connected socket, or null when the connect was not answered within <paramref name="timeout"/>.</summary>
    public static async Task<Socket?> TryConnectAsync(LabPod from, LabPod to, int port, TimeSpan timeout, CancellationToken ct)
    {
        var socket = NetworkNamespace.Run(from.Netns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        socket.NoDelay = true;
        // Close with a reset: no TIME_WAIT, so thousands of short connections never run out of source ports.
        socket.LingerState = new LingerOption(true, 0);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(to.Ip), port), deadline.Token);
            return socket;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException && !ct.IsCancellationRequested)
        {
            socket.Dispose();
            return null;
        }
    }

    /// <summary>Connects and has one line echoed: true when the datapath lets the whole conversation through.</summary>
    public static async Task<bool> ConversesAsync(LabPod from, LabPod to, int port)
    {
        var ct = TestContext.Current.CancellationToken;
        using var socket = await TryConnectAsync(from, to, port, TimeSpan.FromSeconds(1), ct);
        return socket is not null && await EchoAsync(socket, "hello", TimeSpan.FromSeconds(2), ct);
    }

    /// <summary>Sends one line and waits for the pod server to echo it; false when it does not come back in time.</summary>
    public static async Task<bool> EchoAsync(Socket socket, string line, TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var expected = Encoding.ASCII.GetBytes(line + "\n");
        try
        {
            await socket.SendAsync(expected, SocketFlags.None, deadline.Token);
            var buffer = new byte[expected.Length];
            for (var read = 0; read < buffer.Length;)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, deadline.Token);
                if (n == 0) return false;
                read += n;
            }
            return buffer.AsSpan().SequenceEqual(expected);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }
}

/// <summary>One request of a <see cref="RequestStream"/>: whether it connected, and whether its echo came back.</summary>
internal sealed record RequestOutcome(DateTimeOffset At, bool Connected, bool Answered);

/// <summary>A steady stream of short requests until stopped: every interval a new connection with one echoed line.</summary>
internal sealed class RequestStream
{
    private readonly CancellationTokenSource stop = new();
    private readonly List<RequestOutcome> outcomes = [];
    private readonly Task running;

    private RequestStream(LabPod from, LabPod to, int port, TimeSpan interval, TimeSpan timeout) =>
        running = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var at = DateTimeOffset.UtcNow;
                var connected = false;
                var answered = false;
                try
                {
                    using var socket = await PodTcp.TryConnectAsync(from, to, port, timeout, stop.Token);
                    connected = socket is not null;
                    answered = socket is not null && await PodTcp.EchoAsync(socket, $"request {i}", timeout, stop.Token);
                }
                catch (OperationCanceledException) { break; }   // stopped halfway: this one does not count
                lock (outcomes) outcomes.Add(new(at, connected, answered));
                var rest = interval - (DateTimeOffset.UtcNow - at);
                if (rest > TimeSpan.Zero) await Task.Delay(rest, stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        });

    public static RequestStream Start(LabPod from, LabPod to, int port, TimeSpan interval, TimeSpan timeout) => new(from, to, port, interval, timeout);

    public async Task<IReadOnlyList<RequestOutcome>> StopAsync()
    {
        await stop.CancelAsync();
        await running;
        lock (outcomes) return [.. outcomes];
    }
}

/// <summary>One long-lived connection: a line every interval, each echo awaited before the next line is sent.</summary>
internal sealed class EchoConversation : IDisposable
{
    private readonly Socket socket;
    private readonly CancellationTokenSource stop = new();
    private Task<(int Sent, int Echoed)>? running;

    private EchoConversation(Socket socket) => this.socket = socket;

    public static async Task<EchoConversation> OpenAsync(LabPod from, LabPod to, int port)
    {
        var socket = await PodTcp.TryConnectAsync(from, to, port, TimeSpan.FromSeconds(3), TestContext.Current.CancellationToken);
        Assert.True(socket is not null, $"{from.Id} -> {to.Id}:{port} connects");
        return new EchoConversation(socket);
    }

    public Task<bool> SayAsync(string line, TimeSpan timeout) => PodTcp.EchoAsync(socket, line, timeout, TestContext.Current.CancellationToken);

    /// <summary>Keeps talking in the background until <see cref="StopAsync"/>; stops at the first echo that does not come back.</summary>
    public void Start(TimeSpan interval, TimeSpan timeout) =>
        running = Task.Run(async () =>
        {
            int sent = 0, echoed = 0;
            while (!stop.IsCancellationRequested)
            {
                sent++;
                if (!await PodTcp.EchoAsync(socket, $"line {sent}", timeout, CancellationToken.None)) break;
                echoed++;
                await Task.Delay(interval, stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
            }
            return (sent, echoed);
        });

    public async Task<(int Sent, int Echoed)> StopAsync()
    {
        await stop.CancelAsync();
        return await (running ?? Task.FromResult((0, 0)));
    }

    public void Dispose()
    {
        stop.Cancel();
        socket.Dispose();
        stop.Dispose();
    }
}
