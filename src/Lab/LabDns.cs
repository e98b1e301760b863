using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;
using Mesh.Contracts.Netns;

namespace Mesh.Lab;

public enum LabDnsType { A, AAAA }

/// <summary>One answer record: its owner name, type, TTL in seconds and data (an address).</summary>
public sealed record LabDnsAnswer(string Name, string Type, int Ttl, string Data);

/// <summary>
/// The outcome of one query. <see cref="Answered"/> is false when no answer arrived (timeout, refused connection,
/// unreachable): <see cref="Error"/> says which. An answer has an <see cref="Rcode"/> (NOERROR, NXDOMAIN, REFUSED, …).
/// </summary>
public sealed record LabDnsResult(
    string From, string Server, string Transport, string Name, string Type, bool Answered, string? Rcode,
    IReadOnlyList<LabDnsAnswer> Answers, double ElapsedMs, string? Error);

/// <summary>How to ask: which server (default: the place's resolver, the lab's kube-dns), over TCP or UDP, how long to wait.</summary>
public sealed record LabDnsQueryOptions(IPAddress? Server = null, bool Tcp = false, TimeSpan? Timeout = null);

/// <summary>
/// DNS queries from lab places. The socket is made inside the place's netns (DnsClient's synchronous query opens it on
/// the calling thread), so the query leaves through that place's datapath like a query of its own. A new client per
/// query: DnsClient keeps TCP connections per client, and a connection made in one netns must not serve another.
/// </summary>
public static class LabDns
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(2);

    /// <summary>The resolver of <paramref name="from"/>: the lab's DNS server, for every place of the lab.</summary>
    public static IPAddress ResolverOf(LabState state, LabPlace from) =>
        state.Dns is { Ip.Length: > 0 } dns
            ? IPAddress.Parse(dns.Ip)
            : throw new LabException($"lab '{state.Lab}' has no DNS server, so {from} has no resolver; start it with `meshctl lab dns up` (or name one with --nameserver ADDR)");

    /// <summary>Asks <paramref name="from"/>'s resolver (or <see cref="LabDnsQueryOptions.Server"/>) for <paramref name="name"/>.</summary>
    public static Task<LabDnsResult> QueryAsync(
        LabState state, LabPlace from, string name, LabDnsType type, LabDnsQueryOptions? options = null, CancellationToken ct = default)
    {
        var netns = from.Netns ?? throw new LabException($"a query must start from a lab place (pod, node/NAME or outside/NAME), not the address {from}");
        var server = options?.Server ?? ResolverOf(state, from);
        return Task.Run(() => Query(netns, from.ToString(), server, name, type, options?.Tcp ?? false, options?.Timeout ?? DefaultTimeout), ct);
    }

    /// <summary>
    /// The IPv4 address <paramref name="host"/> stands for, as <paramref name="from"/> would resolve it: an IPv4 literal
    /// as it is, a name through the place's resolver. A name without an A record is a LabException that says so.
    /// </summary>
    public static async Task<IPAddress> ResolveAsync(LabState state, LabPlace from, string host, CancellationToken ct = default)
    {
        if (IPAddress.TryParse(host, out var literal) && literal.AddressFamily == AddressFamily.InterNetwork) return literal;
        var result = await QueryAsync(state, from, host, LabDnsType.A, ct: ct);
        if (!result.Answered)
            throw new LabException($"cannot resolve '{host}' from {from}: no answer from {result.Server} ({result.Error}); is the lab's DNS up (`meshctl lab dns up`) and does policy let {from} reach it?");
        return result.Answers.Where(a => a.Type == "A").Select(a => IPAddress.Parse(a.Data)).FirstOrDefault()
            ?? throw new LabException($"'{host}' has no A record ({result.Rcode} from {result.Server}); add one with `meshctl lab dns add {host} ADDRESS`");
    }

    /// <summary>One query on a socket made in <paramref name="netns"/> (null: this process's namespace).</summary>
    internal static LabDnsResult Query(string? netns, string from, IPAddress server, string name, LabDnsType type, bool tcp, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        var transport = tcp ? "tcp" : "udp";
        LabDnsResult NoAnswer(string error) =>
            new(from, server.ToString(), transport, name, type.ToString(), false, null, [], clock.Elapsed.TotalMilliseconds, error);
        LookupClient? client = new(new LookupClientOptions(new NameServer(server, 53))
        {
            UseCache = false, UseTcpOnly = tcp, UseTcpFallback = !tcp, Retries = 0, Timeout = timeout,
            ThrowDnsErrors = false, ContinueOnDnsError = false, ContinueOnEmptyResponse = false, UseRandomNameServer = false,
        });
        try
        {
            var response = NetworkNamespace.Run(netns, () => client.Query(name, type == LabDnsType.A ? QueryType.A : QueryType.AAAA));
            if (tcp) CloseTcpConnections(ref client);
            var answers = response.Answers.Select(r => new LabDnsAnswer(
                r.DomainName.Value.TrimEnd('.'), r.RecordType.ToString(), r.TimeToLive,
                r switch { ARecord a => a.Address.ToString(), AaaaRecord aaaa => aaaa.Address.ToString(), _ => r.ToString() })).ToList();
            return new LabDnsResult(from, server.ToString(), transport, name, type.ToString(), true, RcodeName(response.Header.ResponseCode),
                answers, clock.Elapsed.TotalMilliseconds, null);
        }
        catch (DnsResponseException e) when (e.InnerException is SocketException s)
        {
            return NoAnswer(Describe(s.SocketErrorCode));
        }
        catch (DnsResponseException e)
        {
            return NoAnswer(e.Code == DnsResponseCode.ConnectionTimeout ? $"timeout after {timeout.TotalMilliseconds:0} ms" : e.Message);
        }
        catch (SocketException e)
        {
            return NoAnswer(Describe(e.SocketErrorCode));
        }
    }

    /// <summary>
    /// DnsClient keeps each TCP connection in its client for the next query and offers no way to close it: the
    /// connection lives until the client is collected. dnsmasq serves each TCP connection from a child of its own, at
    /// most 20 at a time, each for up to 150 s, so a process that asks often would soon find every child taken. The
    /// client is dropped and collected here, which closes its socket (with a reset: DnsClient sets a zero linger).
    /// </summary>
    private static void CloseTcpConnections(ref LookupClient? client)
    {
        client = null;
        GC.Collect();
        GC.WaitForPendingFinalizers();
    }

    /// <summary>RFC 1035/6895 mnemonics, as dig prints them.</summary>
    public static string RcodeName(DnsHeaderResponseCode code) => code switch
    {
        DnsHeaderResponseCode.NoError => "NOERROR",
        DnsHeaderResponseCode.FormatError => "FORMERR",
        DnsHeaderResponseCode.ServerFailure => "SERVFAIL",
        DnsHeaderResponseCode.NotExistentDomain => "NXDOMAIN",
        DnsHeaderResponseCode.NotImplemented => "NOTIMP",
        DnsHeaderResponseCode.Refused => "REFUSED",
        _ => code.ToString().ToUpperInvariant(),
    };

    private static string Describe(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => "refused",
        SocketError.ConnectionReset => "reset",
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
        SocketError.TimedOut or SocketError.WouldBlock => "timeout",
        _ => error.ToString(),
    };
}
