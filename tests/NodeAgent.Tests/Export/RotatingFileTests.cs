using System.IO.Compression;
using Mesh.NodeAgent.Export;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.NodeAgent.Tests.Export;

public sealed class RotatingFileTests : IDisposable
{
    private readonly ExportScenario _scenario = new();
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 12, 6, 7, 1, 2, 123, TimeSpan.Zero));

    private static string Line(int n) => $"line-{n:D4}-" + new string('x', 20);   // 30 bytes with its newline

    private RotatingFile File(long maxBytes, int maxBackups = 0, bool compress = false) =>
        new(_scenario.PathOf("flows.log"), maxBytes, maxBackups, compress, _clock, _scenario.Log.WriteLine);

    private string[] Backups(string pattern = "flows-*.log*") =>
        [.. Directory.EnumerateFiles(_scenario.Directory, pattern).Order(StringComparer.Ordinal)];

    [Fact]
    public void A_file_that_would_grow_past_its_maximum_is_renamed_with_the_time_and_no_line_is_split_or_lost()
    {
        using (var file = File(maxBytes: 100))   // three lines of 30 bytes fit, a fourth would not
        {
            for (var n = 0; n < 10; n++)
            {
                file.WriteLine(Line(n));
                _clock.Advance(TimeSpan.FromSeconds(1));
            }
        }

        var backups = Backups();
        Assert.Equal(["flows-2026-12-06T07-01-05.123.log", "flows-2026-12-06T07-01-08.123.log", "flows-2026-12-06T07-01-11.123.log"],
            backups.Select(Path.GetFileName));
        Assert.All(backups, b => Assert.True(new FileInfo(b).Length <= 100, $"{b} is {new FileInfo(b).Length} bytes"));
        Assert.Equal([Line(9)], System.IO.File.ReadAllLines(_scenario.PathOf("flows.log")));
        var everyLine = backups.Append(_scenario.PathOf("flows.log")).SelectMany(System.IO.File.ReadAllLines);
        Assert.Equal(Enumerable.Range(0, 10).Select(Line), everyLine);
    }

    [Fact]
    public void Rotations_within_one_millisecond_get_names_that_still_sort_in_the_order_they_were_written()
    {
        using (var file = File(maxBytes: 30))
            for (var n = 0; n < 4; n++)
            {
                file.WriteLine(Line(n));
                _clock.Advance(TimeSpan.FromTicks(3_000));   // 0.3 ms: the same millisecond, mostly
            }

        var everyLine = Backups().Append(_scenario.PathOf("flows.log")).SelectMany(System.IO.File.ReadAllLines);
        Assert.Equal(Enumerable.Range(0, 4).Select(Line), everyLine);
        Assert.Equal(3, Backups().Length);
    }

    [Fact]
    public void A_line_longer_than_the_maximum_gets_a_file_of_its_own()
    {
        var longLine = new string('y', 250);
        using (var file = File(maxBytes: 100))
        {
            file.WriteLine(Line(0));
            file.WriteLine(longLine);
            file.WriteLine(Line(1));
        }

        Assert.Equal([[Line(0)], [longLine]], Backups().Select(System.IO.File.ReadAllLines));
        Assert.Equal([Line(1)], System.IO.File.ReadAllLines(_scenario.PathOf("flows.log")));
    }

    [Fact]
    public async Task Backups_beyond_the_maximum_are_deleted_oldest_first()
    {
        using var file = File(maxBytes: 30, maxBackups: 2);
        for (var n = 0; n < 6; n++)
        {
            file.WriteLine(Line(n));
            _clock.Advance(TimeSpan.FromSeconds(1));
        }
        await file.MilledAsync();

        Assert.Equal([[Line(3)], [Line(4)]], Backups().Select(System.IO.File.ReadAllLines));
    }

    [Fact]
    public async Task Compressed_backups_are_gzip_files_holding_their_lines_and_the_live_file_stays_plain()
    {
        using var file = File(maxBytes: 100, maxBackups: 2, compress: true);
        for (var n = 0; n < 10; n++)
        {
            file.WriteLine(Line(n));
            _clock.Advance(TimeSpan.FromSeconds(1));
        }
        await file.MilledAsync();

        Assert.Empty(Backups("flows-*.log"));
        var compressed = Backups("flows-*.log.gz");
        Assert.Equal(["flows-2026-12-06T07-01-08.123.log.gz", "flows-2026-12-06T07-01-11.123.log.gz"], compressed.Select(Path.GetFileName));
        Assert.Equal([[Line(3), Line(4), Line(5)], [Line(6), Line(7), Line(8)]], compressed.Select(Gunzip));
        file.Flush();
        Assert.Equal([Line(9)], ExportScenario.ReadShared(_scenario.PathOf("flows.log")));
    }

    [Fact]
    public void A_maximum_of_zero_never_rotates()
    {
        using (var file = File(maxBytes: 0))
            for (var n = 0; n < 50; n++) file.WriteLine(Line(n));

        Assert.Empty(Backups());
        Assert.Equal(50, System.IO.File.ReadAllLines(_scenario.PathOf("flows.log")).Length);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Files_and_backups_are_readable_by_their_owner_only_and_missing_directories_are_created()
    {
        var path = Path.Combine(_scenario.Directory, "a", "b", "flows.log");
        using (var file = new RotatingFile(path, 30, 0, compress: true, _clock, _scenario.Log.WriteLine))
        {
            file.WriteLine(Line(0));
            file.WriteLine(Line(1));
            await file.MilledAsync();
        }

        const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(OwnerReadWrite, System.IO.File.GetUnixFileMode(path));
        var backup = Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!, "flows-*.log.gz"));
        Assert.Equal(OwnerReadWrite, System.IO.File.GetUnixFileMode(backup));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
            System.IO.File.GetUnixFileMode(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public void An_existing_file_is_appended_to_and_counts_toward_the_maximum()
    {
        Directory.CreateDirectory(_scenario.Directory);
        System.IO.File.WriteAllText(_scenario.PathOf("flows.log"), Line(0) + "\n" + Line(1) + "\n");
        using (var file = File(maxBytes: 100))
        {
            file.WriteLine(Line(2));
            file.WriteLine(Line(3));
        }

        Assert.Equal([[Line(0), Line(1), Line(2)]], Backups().Select(System.IO.File.ReadAllLines));
        Assert.Equal([Line(3)], System.IO.File.ReadAllLines(_scenario.PathOf("flows.log")));
    }

    private static string[] Gunzip(string path)
    {
        using var gzip = new GZipStream(System.IO.File.OpenRead(path), CompressionMode.Decompress);
        return new StreamReader(gzip).ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    public void Dispose() => _scenario.Dispose();
}
