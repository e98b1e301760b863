using System.Runtime.InteropServices;
using System.Text;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>
/// Routes libbpf's messages (verifier logs on a failed load, netlink errors) to a sink, stderr by default.
/// libbpf has one print callback per process, so the sink is process-wide too. Debug messages are dropped.
/// </summary>
internal static unsafe class LibBpfLog
{
    private const int LevelWarn = 0, LevelInfo = 1;
    private static volatile Action<string>? sink;
    private static int installed;

    public static void Install(Action<string>? destination)
    {
        if (destination is not null) sink = destination;
        if (Interlocked.Exchange(ref installed, 1) == 0)
            LibBpf.SetPrint(&Print);
    }

    [UnmanagedCallersOnly]
    private static int Print(int level, nint format, nint args)
    {
        if (level != LevelWarn && level != LevelInfo) return 0;
        try
        {
            // Verifier logs arrive in one message and can be long; longer ones are cut, the start is what matters.
            const int capacity = 16 * 1024;
            var buffer = (byte*)NativeMemory.Alloc(capacity);
            try
            {
                var length = LibC.VsnPrintf(buffer, capacity, format, args);
                if (length <= 0) return 0;
                var text = Encoding.UTF8.GetString(buffer, Math.Min(length, capacity - 1)).TrimEnd('\n');
                if (sink is { } s) s(text);   // libbpf starts its lines with "libbpf: " itself
                else Console.Error.WriteLine(text);
                return length;
            }
            finally { NativeMemory.Free(buffer); }
        }
        catch
        {
            return 0;   // an exception must never unwind into libbpf
        }
    }
}
