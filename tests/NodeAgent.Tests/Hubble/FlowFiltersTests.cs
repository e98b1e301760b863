using Google.Protobuf.WellKnownTypes;
using Mesh.Contracts.Hubble;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Hubble.Observers;
using Mesh.NodeAgent.Hubble;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Tests.Hubble;

public sealed class FlowFiltersTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 4, 0, 0, TimeSpan.Zero);

    private static FlowMessage Flow(int second, string from, string to, ushort port, Verdict verdict, string node = "node-1",
        TrafficDirection direction = TrafficDirection.Ingress, string[]? toLabels = null, string proto = "tcp") => new()
    {
        Uuid = $"flow-{second}",
        Time = Timestamp.FromDateTimeOffset(T0.AddSeconds(second)),
        Verdict = verdict,
        IP = new IP { Source = $"10.201.0.{from.Length}", Destination = to.StartsWith("shop", StringComparison.Ordinal) ? "10.201.1.5" : "10.201.0.99", IpVersion = IPVersion.Ipv4 },
        L4 = proto == "tcp" ? new Layer4 { TCP = new TCP { SourcePort = 40000, DestinationPort = port } } : new Layer4 { UDP = new UDP { SourcePort = 40000, DestinationPort = port } },
        Source = new Endpoint { Namespace = from.Split('/')[0], PodName = from.Split('/')[1], Identity = 1001 },
        Destination = new Endpoint { Namespace = to.Split('/')[0], PodName = to.Split('/')[1], Identity = 1002, Labels = { toLabels ?? [] } },
        NodeName = node,
        TrafficDirection = direction,
        EventType = new CiliumEventType { Type = verdict == Verdict.Dropped ? 1 : 9, SubType = verdict == Verdict.Dropped ? 133 : 0 },
    };

    private static readonly FlowMessage[] Flows =
    [
        Flow(0, "default/client-1", "shop/server-a", 80, Verdict.Forwarded, toLabels: ["k8s:app=server", "k8s:tier=web"]),
        Flow(1, "default/client-2", "shop/server-b", 81, Verdict.Dropped, toLabels: ["k8s:app=server"]),
        Flow(2, "default/other-1", "default/db-1", 5432, Verdict.Dropped, node: "node-2", direction: TrafficDirection.Egress, proto: "udp"),
        Flow(3, "kube/dns-1", "shop/server-a", 80, Verdict.Forwarded, toLabels: ["k8s:app=server", "k8s:tier=api"]),
    ];

    private static string[] Select(GetFlowsRequest request) => [.. new FlowQuery(request).Select(Flows).Select(f => f.Uuid)];

    private static GetFlowsRequest Whitelist(params FlowFilter[] filters)
    {
        var request = new GetFlowsRequest();
        request.Whitelist.AddRange(filters);
        return request;
    }

    [Fact]
    public void Whitelist_filters_are_ored_and_the_fields_of_one_filter_anded()
    {
        var dropped = new FlowFilter { Verdict = { Verdict.Dropped } };
        var port80FromKube = new FlowFilter { DestinationPort = { "80" }, SourcePod = { "kube/" } };

        Assert.Equal(["flow-1", "flow-2", "flow-3"], Select(Whitelist(dropped, port80FromKube)));
        Assert.Equal(["flow-3"], Select(Whitelist(port80FromKube)));
    }

    [Fact]
    public void A_blacklisted_flow_is_left_out_even_when_whitelisted()
    {
        var request = Whitelist(new FlowFilter { DestinationPod = { "shop/server" } });
        request.Blacklist.Add(new FlowFilter { SourcePod = { "client-2" } });
        request.Blacklist.Add(new FlowFilter { NodeName = { "node-9*" } });

        Assert.Equal(["flow-0", "flow-3"], Select(request));
    }

    [Fact]
    public void Each_field_kind_selects_what_it_names()
    {
        Assert.Equal(["flow-1"], Select(Whitelist(new FlowFilter { DestinationPod = { "shop/server-b" } })));
        Assert.Equal(["flow-0", "flow-1", "flow-2"], Select(Whitelist(new FlowFilter { SourcePod = { "default/" } })));
        Assert.Equal(["flow-0", "flow-1", "flow-3"], Select(Whitelist(new FlowFilter { DestinationIp = { "10.201.1.0/24" } })));
        Assert.Equal(["flow-2"], Select(Whitelist(new FlowFilter { DestinationIp = { "10.201.0.99" } })));
        Assert.Equal(["flow-0", "flow-3"], Select(Whitelist(new FlowFilter { DestinationLabel = { "app=server,tier" } })));
        Assert.Equal(["flow-3"], Select(Whitelist(new FlowFilter { DestinationLabel = { "k8s:tier in (api, db)" } })));
        Assert.Equal(["flow-1", "flow-2"], Select(Whitelist(new FlowFilter { DestinationLabel = { "!tier" } })));
        Assert.Equal(["flow-0", "flow-1", "flow-2"], Select(Whitelist(new FlowFilter { DestinationLabel = { "tier!=api" } })));
        Assert.Equal(["flow-0", "flow-1", "flow-2", "flow-3"], Select(Whitelist(new FlowFilter { SourceIdentity = { 1001 } })));
        Assert.Empty(Select(Whitelist(new FlowFilter { DestinationIdentity = { 1001 } })));
        Assert.Equal(["flow-2"], Select(Whitelist(new FlowFilter { Protocol = { "UDP" } })));
        Assert.Equal(["flow-2"], Select(Whitelist(new FlowFilter { TrafficDirection = { TrafficDirection.Egress } })));
        Assert.Equal(["flow-2"], Select(Whitelist(new FlowFilter { NodeName = { "default/node-2" } })));
        Assert.Equal(["flow-1", "flow-2"], Select(Whitelist(new FlowFilter { EventType = { new EventTypeFilter { Type = 1, MatchSubType = true, SubType = 133 } } })));
        Assert.Empty(Select(Whitelist(new FlowFilter { EventType = { new EventTypeFilter { Type = 1, MatchSubType = true, SubType = 181 } } })));
        Assert.Equal(["flow-2"], Select(Whitelist(new FlowFilter { Uuid = { "flow-2" } })));
    }

    [Fact]
    public void Since_and_until_bound_the_window_inclusively()
    {
        var request = new GetFlowsRequest { Since = Timestamp.FromDateTimeOffset(T0.AddSeconds(1)), Until = Timestamp.FromDateTimeOffset(T0.AddSeconds(2)) };

        Assert.Equal(["flow-1", "flow-2"], Select(request));
    }

    [Fact]
    public void Number_takes_the_last_matching_flows_or_with_first_the_earliest_in_time_order()
    {
        Assert.Equal(["flow-2", "flow-3"], Select(new GetFlowsRequest { Number = 2 }));
        Assert.Equal(["flow-0", "flow-1"], Select(new GetFlowsRequest { Number = 2, First = true }));
        var lastForwarded = Whitelist(new FlowFilter { Verdict = { Verdict.Forwarded } });
        lastForwarded.Number = 1;
        Assert.Equal(["flow-3"], Select(lastForwarded));
        Assert.Equal(4, Select(new GetFlowsRequest()).Length);
    }

    [Theory]
    [InlineData("source_fqdn")]
    [InlineData("http_status_code")]
    [InlineData("destination_ip")]
    [InlineData("destination_port")]
    [InlineData("protocol")]
    [InlineData("destination_label")]
    [InlineData("http_path")]
    public void A_filter_Mesh_cannot_honour_is_refused_naming_its_field(string field)
    {
        var filter = field switch
        {
            "source_fqdn" => new FlowFilter { SourceFqdn = { "example.com" } },
            "http_status_code" => new FlowFilter { HttpStatusCode = { "4xx" } },
            "destination_ip" => new FlowFilter { DestinationIp = { "10.0.0.300" } },
            "destination_port" => new FlowFilter { DestinationPort = { "http" } },
            "protocol" => new FlowFilter { Protocol = { "gre" } },
            "http_path" => new FlowFilter { HttpPath = { "(?<=/api)v1" } },
            _ => new FlowFilter { DestinationLabel = { "app in app" } },
        };

        var refused = Assert.Throws<FlowFilterException>(() => new FlowQuery(Whitelist(new FlowFilter(), filter)));
        Assert.StartsWith($"whitelist[1].{field}:", refused.Message);
    }

    [Fact]
    public void The_l7_filters_match_the_proxies_flows_as_hubbles_do()
    {
        var get = Flow(10, "default/client-1", "shop/server-a", 80, Verdict.Forwarded);
        get.L7 = new Layer7 { Http = new HTTP { Code = 200, Method = "GET", Url = "http://web/api/v1/public?page=2", Protocol = "HTTP/1.1" } };
        var post = Flow(11, "default/client-1", "shop/server-a", 80, Verdict.Dropped);
        post.L7 = new Layer7 { Http = new HTTP { Code = 403, Method = "POST", Url = "http://web/api/v1/orders", Protocol = "HTTP/1.1" } };
        var dns = Flow(12, "default/client-1", "shop/server-a", 53, Verdict.Forwarded, proto: "udp");
        dns.L7 = new Layer7 { Dns = new DNS { Query = "api.example.com.", Rcode = 0 } };
        FlowMessage[] flows = [.. Flows, get, post, dns];
        string[] Matching(FlowFilter filter) => [.. new FlowQuery(Whitelist(filter)).Select(flows).Select(f => f.Uuid)];

        Assert.Equal(["flow-10", "flow-11"], Matching(new FlowFilter { Protocol = { "http" } }));
        Assert.Equal(["flow-12"], Matching(new FlowFilter { Protocol = { "dns" } }));
        Assert.Empty(Matching(new FlowFilter { Protocol = { "kafka" } }));
        Assert.Contains("flow-10", Matching(new FlowFilter { Protocol = { "tcp" } }));
        Assert.Equal(["flow-11"], Matching(new FlowFilter { HttpStatusCode = { "4+" } }));
        Assert.Equal(["flow-10"], Matching(new FlowFilter { HttpStatusCode = { "200" } }));
        Assert.Equal(["flow-11"], Matching(new FlowFilter { HttpMethod = { "post" } }));
        Assert.Equal(["flow-10"], Matching(new FlowFilter { HttpPath = { "^/api/v1/pub" } }));
        Assert.Empty(Matching(new FlowFilter { HttpPath = { "page" } }));   // the path, not the query
        Assert.Equal(["flow-12"], Matching(new FlowFilter { DnsQuery = { @"\.example\.com\.$" } }));
    }

    [Fact]
    public void First_with_follow_is_refused()
    {
        Assert.Throws<FlowFilterException>(() => new FlowQuery(new GetFlowsRequest { First = true, Follow = true }));
    }
}
