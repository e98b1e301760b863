using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using Mesh.Contracts.Netns;

namespace Mesh.NodeAgent.Netns;

public enum LinkChangeKind
{
    /// <summary>RTM_NEWLINK: the interface exists now (it appeared, was renamed to this name, or changed state).</summary>
    Present,
    /// <summary>RTM_DELLINK: the interface is gone.</summary>
    Gone,
    /// <summary>The socket's buffer overflowed (ENOBUFS): announcements were lost, so any interface may have changed.</summary>
    Missed,
}

/// <summary>One announcement of rtnetlink about an interface; <see cref="Name"/> is empty for <see cref="LinkChangeKind.Missed"/>.</summary>
public sealed record LinkChange(LinkChangeKind Kind, string Name);

/// <summary>
/// Follows the interfaces of one network namespace as rtnetlink announces them (the RTMGRP_LINK group). The socket
/// is opened on a thread inside the namespace, so it hears that namespace's links and no other, and is then read from
/// any thread. Interfaces that exist already are not announced: a reader compares with what it found itself.
/// </summary>
public sealed partial class LinkWatcher : IDisposable
{
    private const int AfNetlink = 16, SockRaw = 3, SockCloexec = 0x80000, NetlinkRoute = 0;
    private const uint RtmgrpLink = 1;
    private const ushort RtmNewLink = 16, RtmDelLink = 17, IflaIfname = 3;
    private const int NlmsgHeaderLength = 16, IfinfomsgLength = 16, RtattrHeaderLength = 4;

    private readonly Socket socket;
    private readonly Channel<LinkChange> changes = Channel.CreateUnbounded<LinkChange>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly CancellationTokenSource stop = new();
    private readonly Task reading;

    private LinkWatcher(Socket socket)
    {
        this.socket = socket;
        reading = ReadAsync();
    }

    /// <summary>Announcements in the order the kernel sent them. The reader ends with the error that stopped the watch,
    /// if one did; Dispose ends it without one.</summary>
    public ChannelReader<LinkChange> Changes => changes.Reader;

    /// <summary>Starts following the interfaces of <paramref name="netns"/> (null: this process's own namespace).</summary>
    public static LinkWatcher Start(string? netns)
    {
        // Only the raw socket is made inside the namespace. The first socket objects of a process (a SafeSocketHandle
        // will do) start .NET's socket threads, which would stay in that namespace, and every later connection with them.
        var handle = new SafeSocketHandle(NetworkNamespace.Run(netns, Open), ownsHandle: true);
        try { return new LinkWatcher(new Socket(handle)); }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <returns>the socket's file descriptor, bound to the link announcements</returns>
    private static int Open()
    {
        var fd = SocketCall(AfNetlink, SockRaw | SockCloexec, NetlinkRoute);
        if (fd < 0) throw new IOException($"socket(AF_NETLINK, NETLINK_ROUTE): errno {Marshal.GetLastPInvokeError()}");
        // struct sockaddr_nl { sa_family_t nl_family; unsigned short nl_pad; __u32 nl_pid; __u32 nl_groups; }, pid 0: the kernel picks one.
        var address = new byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(address, AfNetlink);
        BinaryPrimitives.WriteUInt32LittleEndian(address.AsSpan(8), RtmgrpLink);
        if (BindCall(fd, address, address.Length) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            CloseCall(fd);
            throw new IOException($"bind(AF_NETLINK, RTMGRP_LINK): errno {errno}");
        }
        return fd;
    }

    private async Task ReadAsync()
    {
        // Link messages carry statistics and are a few KiB at most; a datagram is one message or a batch of them.
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int length;
                try { length = await socket.ReceiveAsync(buffer, SocketFlags.None, stop.Token); }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.NoBufferSpaceAvailable)
                {
                    changes.Writer.TryWrite(new LinkChange(LinkChangeKind.Missed, ""));
                    continue;
                }
                foreach (var change in Parse(buffer.AsSpan(0, length))) changes.Writer.TryWrite(change);
            }
        }
        catch (Exception e) when (stop.IsCancellationRequested && e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            changes.Writer.TryComplete();
        }
        catch (SocketException e)
        {
            changes.Writer.TryComplete(new IOException($"reading rtnetlink link announcements: {e.Message}", e));
        }
    }

    /// <summary>The RTM_NEWLINK and RTM_DELLINK messages of one datagram: nlmsghdr, ifinfomsg, then attributes, each
    /// 4-byte aligned; the name is the IFLA_IFNAME attribute.</summary>
    private static List<LinkChange> Parse(ReadOnlySpan<byte> datagram)
    {
        var found = new List<LinkChange>();
        while (datagram.Length >= NlmsgHeaderLength)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(datagram);
            if (length < NlmsgHeaderLength || length > datagram.Length) break;
            var type = BinaryPrimitives.ReadUInt16LittleEndian(datagram[4..]);
            if ((type == RtmNewLink || type == RtmDelLink) && length >= NlmsgHeaderLength + IfinfomsgLength
                && NameOf(datagram[(NlmsgHeaderLength + IfinfomsgLength)..length]) is { } name)
                found.Add(new LinkChange(type == RtmNewLink ? LinkChangeKind.Present : LinkChangeKind.Gone, name));
            datagram = datagram[Math.Min(Align(length), datagram.Length)..];
        }
        return found;
    }

    private static string? NameOf(ReadOnlySpan<byte> attributes)
    {
        while (attributes.Length >= RtattrHeaderLength)
        {
            var length = BinaryPrimitives.ReadUInt16LittleEndian(attributes);
            if (length < RtattrHeaderLength || length > attributes.Length) return null;
            if (BinaryPrimitives.ReadUInt16LittleEndian(attributes[2..]) == IflaIfname)
                return Encoding.ASCII.GetString(attributes[RtattrHeaderLength..length]).TrimEnd('\0');
            attributes = attributes[Math.Min(Align(length), attributes.Length)..];
        }
        return null;
    }

    private static int Align(int length) => (length + 3) & ~3;

    public void Dispose()
    {
        stop.Cancel();
        socket.Dispose();
        reading.GetAwaiter().GetResult();
        stop.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int SocketCall(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    private static partial int BindCall(int fd, byte[] address, int length);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int CloseCall(int fd);
}
