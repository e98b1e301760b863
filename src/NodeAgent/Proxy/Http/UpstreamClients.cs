using System.Net;

namespace Mesh.NodeAgent.Proxy.Http;

/// <summary>
/// The upstream HTTP clients, one per pod (source) address, each with its own connection pool. Keyed by source rather
/// than by downstream connection: a pod that opens a connection per request still reuses upstream connections, and a
/// pooled connection, bound to one pod's address, can never carry another pod's request. A client nobody used for
/// the idle time is dropped with its connections, so pods that went away leave nothing behind.
/// </summary>
internal sealed class UpstreamClients : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<IPAddress, Client> _bySource = [];
    private readonly Func<IPAddress, HttpMessageInvoker> _create;
    private readonly TimeSpan _idle;
    private readonly TimeProvider _time;
    private readonly ITimer _sweeper;

    public UpstreamClients(Func<IPAddress, HttpMessageInvoker> create, TimeSpan idle, TimeProvider time)
    {
        _create = create;
        _idle = idle;
        _time = time;
        // Half the idle time: a client is dropped between one and one and a half idle times after its last request.
        var period = idle / 2;
        _sweeper = time.CreateTimer(_ => Sweep(), null, period, period);
    }

    /// <summary>How many pods have a client now.</summary>
    public int Count { get { lock (_lock) return _bySource.Count; } }

    /// <summary>The client for requests from <paramref name="source"/>, kept until the lease is disposed.</summary>
    public Lease Rent(IPAddress source)
    {
        lock (_lock)
        {
            if (!_bySource.TryGetValue(source, out var client))
                _bySource.Add(source, client = new Client(_create(source)));
            client.InFlight++;
            return new Lease(this, client);
        }
    }

    public void Dispose()
    {
        _sweeper.Dispose();
        Client[] all;
        lock (_lock)
        {
            all = [.. _bySource.Values];
            _bySource.Clear();
        }
        foreach (var client in all) client.Invoker.Dispose();
    }

    private void Return(Client client)
    {
        lock (_lock)
        {
            client.InFlight--;
            client.LastUsed = _time.GetTimestamp();
        }
    }

    private void Sweep()
    {
        var expired = new List<KeyValuePair<IPAddress, Client>>();
        lock (_lock)
        {
            foreach (var entry in _bySource)
                if (entry.Value.InFlight == 0 && _time.GetElapsedTime(entry.Value.LastUsed) >= _idle)
                    expired.Add(entry);
            foreach (var (source, _) in expired) _bySource.Remove(source);
        }
        foreach (var (_, client) in expired) client.Invoker.Dispose();
    }

    internal sealed class Client(HttpMessageInvoker invoker)
    {
        public HttpMessageInvoker Invoker { get; } = invoker;
        public int InFlight { get; set; }
        public long LastUsed { get; set; }
    }

    /// <summary>One request's hold on a client: the client is not dropped while a request uses it.</summary>
    public readonly struct Lease : IDisposable
    {
        private readonly UpstreamClients _owner;
        private readonly Client _client;

        internal Lease(UpstreamClients owner, Client client) => (_owner, _client) = (owner, client);

        public HttpMessageInvoker Invoker => _client.Invoker;

        public void Dispose() => _owner.Return(_client);
    }
}
