using System.Runtime.InteropServices;

namespace Mesh.Contracts.Netns;

/// <summary>
/// Runs code inside a named network namespace (/run/netns/NAME) on a dedicated OS thread. setns(2) switches only
/// the calling thread, so sockets and netlink calls made inside the callback belong to that namespace while the
/// rest of the process stays where it was. Unlike `ip netns exec`, this keeps /sys/fs/bpf visible.
/// It lives here because the node agent (its datapath in a node's netns) and the lab (pods' sockets) both need it,
/// and neither may depend on the other.
/// </summary>
public static partial class NetworkNamespace
{
    private const int CloneNewNet = 0x40000000;

    public static string PathOf(string name) => $"/run/netns/{name}";

    public static bool Exists(string name) => File.Exists(PathOf(name));

    /// <summary>Runs <paramref name="action"/> inside namespace <paramref name="name"/> (null = the process's own).</summary>
    public static T Run<T>(string? name, Func<T> action)
    {
        if (name is null) return action();
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var target = File.OpenHandle(PathOf(name));
                if (SetNs(target.DangerousGetHandle().ToInt32(), CloneNewNet) != 0)
                    throw new IOException($"setns({PathOf(name)}): errno {Marshal.GetLastPInvokeError()}");
                // The thread dies after this; it never returns to the pool in the wrong namespace.
                result = action();
            }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = $"netns:{name}" };
        thread.Start();
        thread.Join();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        return result;
    }

    public static void Run(string? name, Action action) => Run<object?>(name, () => { action(); return null; });

    /// <summary>Starts a long-lived background thread inside the namespace (e.g. an accept loop).</summary>
    public static Thread Start(string name, Action body)
    {
        var thread = new Thread(() =>
        {
            using (var target = File.OpenHandle(PathOf(name)))
                if (SetNs(target.DangerousGetHandle().ToInt32(), CloneNewNet) != 0)
                    throw new IOException($"setns({PathOf(name)}): errno {Marshal.GetLastPInvokeError()}");
            body();
        }) { IsBackground = true, Name = $"netns:{name}" };
        thread.Start();
        return thread;
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);
}
