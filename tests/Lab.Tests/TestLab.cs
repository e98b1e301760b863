using System.Net;

namespace Mesh.Lab.Tests;

/// <summary>A lab with a unique name and its own state folder, torn down on dispose whatever the test did.</summary>
internal sealed class TestLab : IDisposable
{
    public TestLab()
    {
        Name = "lt" + Guid.NewGuid().ToString("N")[..8];
        StateDirectory = Path.Combine(Path.GetTempPath(), "mesh-lab-tests", Name);
        Lab = new Lab(new LabOptions(Name, StateDirectory), PodServerHost.Launch);
    }

    public string Name { get; }
    public string StateDirectory { get; }
    public Lab Lab { get; }
    public string PinDirectory => Path.Combine(LabOptions.DefaultPinBase, Name);

    public IReadOnlyList<string> Namespaces() =>
        Directory.EnumerateFileSystemEntries("/run/netns").Select(p => Path.GetFileName(p)!)
            .Where(n => n.StartsWith(Name + "-", StringComparison.Ordinal)).ToList();

    public LabPod AddPod(string reference, string? node = null, string labels = "")
    {
        var (ns, name) = LabNames.ParsePodRef(reference);
        return Lab.AddPod(ns, name, LabelChanges.ParseLabels(labels), node);
    }

    public static Task<ProbeResult> Probe(LabPod from, LabPod to, int port, LabProtocol protocol) =>
        Probe(from.Netns, to.Ip, port, protocol);

    public static Task<ProbeResult> Probe(string fromNetns, string to, int port, LabProtocol protocol) =>
        Prober.ProbeAsync(fromNetns, IPAddress.Parse(to), port, protocol, TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);

    /// <summary>Every line-echoing port of the pod server at <paramref name="to"/>, probed from <paramref name="fromNetns"/>; the ones that failed, with why.</summary>
    public static async Task<List<string>> Unreachable(string fromNetns, string to)
    {
        var failures = new List<string>();
        foreach (var port in PodServer.NamedPorts.Where(p => p.EchoesLines))
        {
            var result = await Probe(fromNetns, to, port.Port, port.Protocol);
            if (!result.Connected) failures.Add($"{fromNetns} -> {to} {port.Name}: {result.Detail}");
        }
        return failures;
    }

    public void Dispose()
    {
        try { Lab.Down(); }
        finally
        {
            if (Directory.Exists(StateDirectory)) Directory.Delete(StateDirectory, recursive: true);
        }
    }
}
