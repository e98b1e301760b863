using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Testing;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Tests.Export;

/// <summary>A temporary directory for one test's export files, flows to export, and the log lines the export writes.</summary>
internal sealed class ExportScenario : IDisposable
{
    public string Directory { get; } = Path.Combine(Path.GetTempPath(), $"mesh-export-{Guid.NewGuid():N}");

    public LogLines Log { get; } = new();

    public string PathOf(string name) => System.IO.Path.Combine(Directory, name);

    public static FlowMessage Flow(int n, Verdict verdict = Verdict.Forwarded, string sourceNamespace = "default", uint port = 80) => new()
    {
        Uuid = $"flow-{n}",
        Time = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 12, 6, 7, 0, 0, TimeSpan.Zero).AddMilliseconds(n)),
        NodeName = "node-1",
        Verdict = verdict,
        DropReasonDesc = verdict == Verdict.Dropped ? DropReason.PolicyDenied : DropReason.Unknown,
        TrafficDirection = TrafficDirection.Ingress,
        IP = new IP { Source = "10.0.0.1", Destination = "10.0.0.2", IpVersion = IPVersion.Ipv4 },
        L4 = new Layer4 { TCP = new TCP { SourcePort = 40000, DestinationPort = port } },
        Source = new Endpoint { Namespace = sourceNamespace, PodName = "client", Identity = 256 },
        Destination = new Endpoint { Namespace = "default", PodName = "server", Identity = 257 },
    };

    /// <summary>The flows' uuids in a file of export lines, in order.</summary>
    public static IReadOnlyList<string> Uuids(IEnumerable<string> lines) =>
        [.. lines.Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("flow").GetProperty("uuid").GetString()!)];

    public static IReadOnlyList<string> UuidsIn(string file) => File.Exists(file) ? Uuids(ReadShared(file)) : [];

    /// <summary>Polls what a tailing reader would see, until it holds or the time is up.</summary>
    public static Task EventuallyAsync(Func<bool> condition, TimeSpan? within = null) =>
        Poll.UntilAsync(condition, "the file showed it", within ?? TimeSpan.FromSeconds(10), every: TimeSpan.FromMilliseconds(20));

    /// <summary>Reads a file the exporter may still hold open, as a tailing reader would.</summary>
    public static string[] ReadShared(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return new StreamReader(stream).ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Writes the file whole by renaming a finished one over it, so a reader never sees half of it.</summary>
    public void WriteConfig(string path, string yaml)
    {
        System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var staged = path + ".staged";
        File.WriteAllText(staged, yaml);
        File.Move(staged, path, overwrite: true);
    }

    public void Dispose()
    {
        if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>A log that tests can wait on: each line written is kept, and a waiter is woken by the line it waits for.</summary>
internal sealed class LogLines : TextWriter
{
    private readonly List<string> _lines = [];
    private readonly System.Text.StringBuilder _current = new();
    private readonly SemaphoreSlim _written = new(0);

    public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return [.. _lines]; }
    }

    public override void Write(char value)
    {
        lock (_lines)
        {
            if (value != '\n') { _current.Append(value); return; }
            _lines.Add(_current.ToString());
            _current.Clear();
        }
        _written.Release();
    }

    /// <summary>The first line, after the first <paramref name="skip"/>, that matches; fails after 10 s naming what it saw.</summary>
    public async Task<string> WaitForAsync(Func<string, bool> matches, int skip = 0)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        while (true)
        {
            if (Lines.Skip(skip).FirstOrDefault(matches) is { } line) return line;
            try { await _written.WaitAsync(timeout.Token); }
            catch (OperationCanceledException) { Assert.Fail($"no such log line in:\n{string.Join('\n', Lines)}"); }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _written.Dispose();
        base.Dispose(disposing);
    }
}
