using System.Net;
using Mesh.NodeAgent.Proxy.Http;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Proxy.Http;

public sealed class UpstreamClientsTests
{
    private static readonly TimeSpan Idle = TimeSpan.FromMilliseconds(300);
    private static readonly IPAddress PodA = IPAddress.Parse("10.231.0.2"), PodB = IPAddress.Parse("10.231.2.2");

    [Fact]
    public void Each_source_address_has_its_own_client_and_keeps_it()
    {
        var made = new List<(IPAddress Source, TrackedHandler Handler)>();
        using var clients = Clients(made, TimeSpan.FromMinutes(1));

        HttpMessageInvoker a1, a2, b;
        using (var lease = clients.Rent(PodA)) a1 = lease.Invoker;
        using (var lease = clients.Rent(PodA)) a2 = lease.Invoker;
        using (var lease = clients.Rent(PodB)) b = lease.Invoker;

        Assert.Same(a1, a2);
        Assert.NotSame(a1, b);
        Assert.Equal([PodA, PodB], made.Select(m => m.Source));
        Assert.Equal(2, clients.Count);
    }

    [Fact]
    public async Task A_client_unused_for_the_idle_time_is_dropped_and_disposed_and_the_next_request_gets_a_new_one()
    {
        var made = new List<(IPAddress Source, TrackedHandler Handler)>();
        using var clients = Clients(made, Idle);
        using (clients.Rent(PodA)) { }
        var returned = DateTime.UtcNow;

        await Poll.UntilAsync(() => made[0].Handler.Disposed, "the idle client is disposed", within: Idle * 10, every: TimeSpan.FromMilliseconds(20));

        Assert.True(DateTime.UtcNow - returned >= Idle * 0.9, "dropped before it was idle for the idle time");
        Assert.Equal(0, clients.Count);
        using (clients.Rent(PodA)) { }
        Assert.Equal(2, made.Count);
    }

    [Fact]
    public async Task A_client_with_a_request_in_flight_is_never_dropped()
    {
        var made = new List<(IPAddress Source, TrackedHandler Handler)>();
        using var clients = Clients(made, Idle);
        var held = clients.Rent(PodA);
        using (clients.Rent(PodB)) { }

        await Poll.UntilAsync(() => made[1].Handler.Disposed, "the idle client of the other pod is dropped", within: Idle * 10,
            every: TimeSpan.FromMilliseconds(20));

        Assert.False(made[0].Handler.Disposed);
        Assert.Equal(1, clients.Count);
        held.Dispose();
    }

    private static UpstreamClients Clients(List<(IPAddress, TrackedHandler)> made, TimeSpan idle) => new(source =>
    {
        var handler = new TrackedHandler();
        lock (made) made.Add((source, handler));
        return new HttpMessageInvoker(handler);
    }, idle, TimeProvider.System);

    private sealed class TrackedHandler : HttpMessageHandler
    {
        public bool Disposed { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            throw new NotSupportedException("never sends");

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}
