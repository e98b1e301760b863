using System.Runtime.InteropServices;

namespace Mesh.Lab;

/// <summary>How to start one long-lived lab process (an agent or a pod server).</summary>
public sealed record ProcessLaunch(
    string Role, string FileName, IReadOnlyList<string> Arguments, string LogFile,
    IReadOnlyDictionary<string, string>? Environment = null);

/// <summary>
/// Starts processes that outlive meshctl: posix_spawn in a new session, stdin from /dev/null and stdout/stderr
/// appended to a log file. Unlike Process.Start with redirection, the child holds no pipe to its parent, so
/// `$(meshctl lab up)` returns and the child never dies of a closed pipe. Every child carries an environment tag
/// naming its lab, so `down` finds it in /proc even when the state file never recorded its pid.
/// </summary>
public static partial class DetachedProcess
{
    public const string LabTagVariable = "MESH_LAB_OWNER";

    private const int ORdOnly = 0, OWrOnly = 1, OCreat = 0x40, OAppend = 0x400;
    private const short PosixSpawnSetSigDef = 0x04, PosixSpawnSetSigMask = 0x08, PosixSpawnSetSid = 0x80;
    private const int SigHup = 1, SigTerm = 15, SigKill = 9, WNoHang = 1;

    public static unsafe RecordedProcess Start(ProcessLaunch launch, string lab)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(launch.LogFile))!);
        var environment = System.Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
        foreach (var (k, v) in launch.Environment ?? new Dictionary<string, string>()) environment[k] = v;
        environment[LabTagVariable] = lab;

        var argv = ToNative([launch.FileName, .. launch.Arguments]);
        var envp = ToNative(environment.Select(e => $"{e.Key}={e.Value}").ToList());
        // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336; sigset_t is 128.
        var actions = NativeMemory.AllocZeroed(512);
        var attributes = NativeMemory.AllocZeroed(1024);
        var signals = NativeMemory.AllocZeroed(256);
        try
        {
            Check(posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Check(posix_spawn_file_actions_addopen(actions, 0, "/dev/null", ORdOnly, 0), "addopen stdin");
            Check(posix_spawn_file_actions_addopen(actions, 1, launch.LogFile, OWrOnly | OCreat | OAppend, 0x1a4), "addopen log");
            Check(posix_spawn_file_actions_adddup2(actions, 1, 2), "adddup2 stderr");
            Check(posix_spawnattr_init(attributes), "posix_spawnattr_init");
            // The runtime ignores or handles some signals; the child starts with defaults and nothing blocked.
            sigfillset(signals);
            Check(posix_spawnattr_setsigdefault(attributes, signals), "setsigdefault");
            sigemptyset(signals);
            Check(posix_spawnattr_setsigmask(attributes, signals), "setsigmask");
            Check(posix_spawnattr_setflags(attributes, (short)(PosixSpawnSetSid | PosixSpawnSetSigDef | PosixSpawnSetSigMask)), "setflags");
            int pid;
            var rc = posix_spawnp(&pid, launch.FileName, actions, attributes, argv, envp);
            if (rc != 0)
                throw new LabException($"cannot start {launch.Role} ({launch.FileName}): {Marshal.GetPInvokeErrorMessage(rc)}");
            return new RecordedProcess(pid, StartTimeOf(pid) ?? 0, launch.Role);
        }
        finally
        {
            posix_spawn_file_actions_destroy(actions);
            posix_spawnattr_destroy(attributes);
            NativeMemory.Free(actions);
            NativeMemory.Free(attributes);
            NativeMemory.Free(signals);
            FreeNative(argv);
            FreeNative(envp);
        }
    }

    /// <summary>True while the recorded process (same pid and start time) runs and is not a zombie.</summary>
    public static bool IsAlive(RecordedProcess process)
    {
        var stat = ReadStat(process.Pid);
        return stat is not null && stat.Value.State != 'Z' && (process.StartTime == 0 || stat.Value.StartTime == process.StartTime);
    }

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>. Never fails when the process is already gone.</summary>
    public static void Stop(RecordedProcess process, TimeSpan? grace = null)
    {
        if (!IsAlive(process)) { Reap(process.Pid); return; }
        kill(process.Pid, SigTerm);
        var deadline = DateTime.UtcNow + (grace ?? TimeSpan.FromSeconds(3));
        while (DateTime.UtcNow < deadline)
        {
            Reap(process.Pid);
            if (!IsAlive(process)) return;
            Thread.Sleep(20);
        }
        kill(process.Pid, SigKill);
        for (var i = 0; i < 100 && IsAlive(process); i++) { Reap(process.Pid); Thread.Sleep(20); }
    }

    /// <summary>SIGHUP (servers such as dnsmasq reread their files); false when the process is not running.</summary>
    public static bool Hangup(RecordedProcess process) => IsAlive(process) && kill(process.Pid, SigHup) == 0;

    /// <summary>SIGKILL (kill -9) with no grace, then waits until the process is gone. Never fails when it already is.</summary>
    public static void Kill(RecordedProcess process)
    {
        if (!IsAlive(process)) { Reap(process.Pid); return; }
        kill(process.Pid, SigKill);
        for (var i = 0; i < 250 && IsAlive(process); i++) { Reap(process.Pid); Thread.Sleep(20); }
    }

    /// <summary>Every running process whose environment carries this lab's tag (found even if never recorded).</summary>
    public static IReadOnlyList<RecordedProcess> FindTagged(string lab)
    {
        var tag = $"{LabTagVariable}={lab}";
        var found = new List<RecordedProcess>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == System.Environment.ProcessId) continue;
            try
            {
                var entries = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                if (entries.Contains(tag) && ReadStat(pid) is { State: not 'Z' } stat)
                    found.Add(new RecordedProcess(pid, stat.StartTime, "tagged"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return found;
    }

    /// <summary>The kernel's start time of a process (clock ticks since boot), null when it does not exist.</summary>
    public static ulong? StartTimeOf(int pid) => ReadStat(pid)?.StartTime;

    private static (char State, ulong StartTime)? ReadStat(int pid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        // The command name may contain spaces and parentheses; the fields after the last ')' are fixed.
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        return (fields[0][0], ulong.Parse(fields[19], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Collects the exit status when the process is our own child; otherwise it stays a zombie of this process.</summary>
    private static void Reap(int pid) => waitpid(pid, out _, WNoHang);

    private static void Check(int rc, string what)
    {
        if (rc != 0) throw new LabException($"{what}: {Marshal.GetPInvokeErrorMessage(rc)}");
    }

    private static unsafe byte** ToNative(IReadOnlyList<string> values)
    {
        var array = (byte**)NativeMemory.AllocZeroed((nuint)(values.Count + 1), (nuint)sizeof(byte*));
        for (var i = 0; i < values.Count; i++) array[i] = (byte*)Marshal.StringToCoTaskMemUTF8(values[i]);
        return array;
    }

    private static unsafe void FreeNative(byte** array)
    {
        for (var p = array; *p != null; p++) Marshal.FreeCoTaskMem((nint)(*p));
        NativeMemory.Free(array);
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int posix_spawnp(int* pid, string file, void* actions, void* attributes, byte** argv, byte** envp);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int posix_spawn_file_actions_addopen(void* actions, int fd, string path, int flags, uint mode);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_init(void* attributes);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_destroy(void* attributes);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_setflags(void* attributes, short flags);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_setsigdefault(void* attributes, void* signals);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_setsigmask(void* attributes, void* signals);

    [LibraryImport("libc")]
    private static unsafe partial int sigfillset(void* set);

    [LibraryImport("libc")]
    private static unsafe partial int sigemptyset(void* set);

    [LibraryImport("libc")]
    private static partial int kill(int pid, int signal);

    [LibraryImport("libc")]
    private static partial int waitpid(int pid, out int status, int options);
}
