using System.Buffers;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace Mesh.NodeAgent.Export;

/// <summary>Where an exporter's lines go: a rotating file, or the agent's stdout.</summary>
internal interface IFlowLogSink : IDisposable
{
    /// <summary>Writes one line (without its newline); buffered until <see cref="Flush"/>.</summary>
    void WriteLine(string line);

    void Flush();
}

/// <summary>Lines on the agent's stdout, one call per line so they never interleave with its log lines.</summary>
internal sealed class StdoutSink(TextWriter stdout) : IFlowLogSink
{
    public void WriteLine(string line) => stdout.WriteLine(line);

    public void Flush() => stdout.Flush();

    public void Dispose() => stdout.Flush();
}

/// <summary>
/// A log file rotated as lumberjack rotates Hubble's export file: when a line would take the file past its maximum
/// size, the file is renamed to NAME-&lt;UTC time&gt;.EXT and a new one is started; backups beyond the maximum are
/// deleted oldest first and, with compression, the others are gzipped in the background. A line is never split
/// across files: a line longer than the maximum gets a file of its own. Files are created 0600 (flows name who talked
/// to whom), the directories missing on the way 0700.
/// </summary>
internal sealed class RotatingFile : IFlowLogSink
{
    private const string BackupTimeFormat = "yyyy-MM-ddTHH-mm-ss.fff";
    private const UnixFileMode FileMode0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode DirectoryMode0700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly string _path;
    private readonly long _maxBytes;
    private readonly int _maxBackups;
    private readonly bool _compress;
    private readonly TimeProvider _clock;
    private readonly Action<string> _log;
    private readonly string _backupPrefix;
    private readonly string _extension;
    private FileStream? _file;
    private long _size;
    private DateTime _lastBackupTime;
    // Pruning and compressing run one at a time, in the order of the rotations that asked for them.
    private Task _mill = Task.CompletedTask;

    /// <param name="maxBytes">rotate before a line would take the file past this; 0 never rotates</param>
    /// <param name="maxBackups">rotated files kept; 0 keeps every one</param>
    public RotatingFile(string path, long maxBytes, int maxBackups, bool compress, TimeProvider clock, Action<string> log)
    {
        _path = Path.GetFullPath(path);
        (_maxBytes, _maxBackups, _compress, _clock, _log) = (maxBytes, maxBackups, compress, clock, log);
        _extension = Path.GetExtension(_path);
        _backupPrefix = Path.GetFileNameWithoutExtension(_path) + "-";
    }

    public string FilePath => _path;

    /// <summary>Creates the missing directories of a file's path, so a path that can never be written is known before the first flow.</summary>
    public static void CreateDirectoryOf(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (Directory.Exists(directory)) return;
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(directory);
        else Directory.CreateDirectory(directory, DirectoryMode0700);
    }

    public void WriteLine(string line)
    {
        var length = Encoding.UTF8.GetByteCount(line) + 1;
        var bytes = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            Encoding.UTF8.GetBytes(line, bytes);
            bytes[length - 1] = (byte)'\n';
            var file = _file ?? Open();
            if (_maxBytes > 0 && _size > 0 && _size + length > _maxBytes) file = Rotate();
            file.Write(bytes, 0, length);
            _size += length;
        }
        finally { ArrayPool<byte>.Shared.Return(bytes); }
    }

    public void Flush() => _file?.Flush();

    /// <summary>The pruning and compression asked for so far, finished.</summary>
    internal Task MilledAsync() => _mill;

    public void Dispose()
    {
        _file?.Dispose();
        _file = null;
        _mill.Wait();
    }

    private FileStream Open()
    {
        CreateDirectoryOf(_path);
        _file = new FileStream(_path, Private(new FileStreamOptions
            { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read | FileShare.Delete, BufferSize = 64 * 1024 }));
        _size = _file.Length;
        return _file;
    }

    private FileStream Rotate()
    {
        _file!.Dispose();
        _file = null;
        // Two rotations within one millisecond must not share a name: the newer takes the next millisecond, so
        // the names still sort in the order the files were written.
        // A name left by an earlier agent is skipped the same way.
        var now = _clock.GetUtcNow().UtcDateTime;
        var time = new DateTime(now.Ticks - now.Ticks % TimeSpan.TicksPerMillisecond, DateTimeKind.Utc);
        string BackupAt(DateTime t) => Path.Combine(Path.GetDirectoryName(_path)!,
            _backupPrefix + t.ToString(BackupTimeFormat, CultureInfo.InvariantCulture) + _extension);
        while (time <= _lastBackupTime || File.Exists(BackupAt(time)) || File.Exists(BackupAt(time) + ".gz")) time = time.AddMilliseconds(1);
        _lastBackupTime = time;
        File.Move(_path, BackupAt(time), overwrite: false);
        _mill = _mill.ContinueWith(_ => Mill(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        return Open();
    }

    /// <summary>Deletes the backups beyond the maximum (oldest first), then compresses the ones left.</summary>
    private void Mill()
    {
        try
        {
            var backups = Backups().OrderByDescending(b => b.Time).ToList();
            if (_maxBackups > 0)
            {
                foreach (var old in backups.Skip(_maxBackups)) File.Delete(old.Path);
                backups = backups.Take(_maxBackups).ToList();
            }
            if (!_compress) return;
            foreach (var backup in backups.Where(b => !b.Compressed)) Compress(backup.Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log($"rotating {_path}: {e.Message}");
        }
    }

    private IEnumerable<(string Path, DateTime Time, bool Compressed)> Backups()
    {
        foreach (var path in Directory.EnumerateFiles(Path.GetDirectoryName(_path)!, _backupPrefix + "*"))
        {
            var name = Path.GetFileName(path);
            var compressed = name.EndsWith(_extension + ".gz", StringComparison.Ordinal);
            var suffix = compressed ? _extension + ".gz" : _extension;
            if (!name.EndsWith(suffix, StringComparison.Ordinal)) continue;
            var stamp = name[_backupPrefix.Length..^suffix.Length];
            if (DateTime.TryParseExact(stamp, BackupTimeFormat, CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var time))
                yield return (path, time, compressed);
        }
    }

    private static FileStreamOptions Private(FileStreamOptions options)
    {
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = FileMode0600;
        return options;
    }

    private static void Compress(string path)
    {
        using (var source = File.OpenRead(path))
        using (var target = new FileStream(path + ".gz", Private(new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write })))
        using (var gzip = new GZipStream(target, CompressionLevel.Optimal))
            source.CopyTo(gzip);
        File.Delete(path);
    }
}
