using System.Runtime.InteropServices;

namespace Mesh.NodeAgent.Datapath.Interop;

internal delegate void RingSampleHandler(ReadOnlySpan<byte> sample);

/// <summary>
/// Polls a BPF ring buffer on its own thread and hands each sample to a handler. Samples the kernel wrote while
/// nobody read stay in the ring and arrive on the first poll.
/// </summary>
internal sealed unsafe class RingBufferReader : IDisposable
{
    private readonly RingSampleHandler handler;
    private readonly Action<string> log;
    private readonly GCHandle self;
    private readonly nint ring;
    private readonly Thread thread;
    private volatile bool stopping;

    public RingBufferReader(BpfMap map, RingSampleHandler handler, Action<string> log)
    {
        this.handler = handler;
        this.log = log;
        self = GCHandle.Alloc(this);
        ring = LibBpf.RingBufferNew(map.Fd, &OnSample, GCHandle.ToIntPtr(self), null);
        if (ring == 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            self.Free();
            throw new BpfException("ring_buffer__new", map.Name, errno);
        }
        thread = new Thread(Poll) { IsBackground = true, Name = $"ringbuf:{map.Name}" };
        thread.Start();
    }

    private void Poll()
    {
        while (!stopping)
        {
            var rc = LibBpf.RingBufferPoll(ring, 100);
            if (rc < 0 && rc != -Errno.EINTR)
            {
                log($"ring_buffer__poll: {Errno.Name(rc)}");
                Thread.Sleep(100);
            }
        }
    }

    [UnmanagedCallersOnly]
    private static int OnSample(nint ctx, nint data, nuint size)
    {
        try
        {
            var reader = (RingBufferReader)GCHandle.FromIntPtr(ctx).Target!;
            reader.handler(new ReadOnlySpan<byte>((void*)data, checked((int)size)));
        }
        catch
        {
            // An exception must never unwind into libbpf; a sample that cannot be decoded is skipped.
        }
        return 0;
    }

    public void Dispose()
    {
        if (stopping) return;
        stopping = true;
        thread.Join();
        LibBpf.RingBufferFree(ring);
        self.Free();
    }
}
