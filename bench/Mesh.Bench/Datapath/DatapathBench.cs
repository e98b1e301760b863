using System.Net;
using Mesh.NodeAgent.Datapath;

namespace Mesh.Bench.Datapath;

/// <summary>
/// The datapath rows: apply and flip times, then request/response through no program, Mesh and iptables. Runs
/// in a lab of its own (one node, two pods) with the node's own pinned datapath; everything is removed at the end.
/// </summary>
internal static class DatapathBench
{
    public static IReadOnlyList<Metric> Run()
    {
        using var lab = BenchLab.Create();
        var client = lab.AddPod("a", []);
        var server = lab.AddPod("b", [client]);
        using var datapath = BpfDatapath.Open(new BpfDatapathOptions
        {
            Netns = lab.Node.Netns, PinRoot = lab.PinRoot, Log = message => Console.Error.WriteLine($"  datapath: {message.TrimEnd()}"),
        });
        var metrics = new List<Metric>();
        Console.Error.WriteLine("datapath: apply and flip ...");
        var endpoint = new EndpointItem("bench/a", client.HostInterface, BenchPolicies.FirstLocalIdentity);
        metrics.AddRange(new ApplyBench(datapath, endpoint, IPAddress.Parse(client.Ip)).Run());
        // The request/response rounds start with nothing attached.
        datapath.Detach(client.HostInterface);
        Console.Error.WriteLine("datapath: request/response, none vs mesh vs iptables ...");
        metrics.AddRange(new RequestResponseBench(datapath, lab, new RrPair(client, server)).Run());
        return metrics;
    }
}
