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
        Prober.ProbeAsync(from.Netns, IPAddress.Parse(to.Ip), port, protocol, TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);

    public void Dispose()
    {
        try { Lab.Down(); }
        finally
        {
            if (Directory.Exists(StateDirectory)) Directory.Delete(StateDirectory, recursive: true);
        }
    }
}
