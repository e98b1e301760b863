namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>errno values libbpf and the bpf syscall return, by name, for error messages a person can act on.</summary>
internal static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, E2BIG = 7, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOSPC = 28, EOPNOTSUPP = 95, ENOTSUPP = 524;

    public static string Name(int errno) => Math.Abs(errno) switch
    {
        EPERM => "EPERM", ENOENT => "ENOENT", EINTR => "EINTR", E2BIG => "E2BIG", EBADF => "EBADF", EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM", EACCES => "EACCES", EFAULT => "EFAULT", EBUSY => "EBUSY", EEXIST => "EEXIST",
        ENODEV => "ENODEV", EINVAL => "EINVAL", ENOSPC => "ENOSPC", EOPNOTSUPP => "EOPNOTSUPP", ENOTSUPP => "ENOTSUPP",
        var other => $"errno {other}",
    };
}

/// <summary>A failed libbpf or bpf syscall call. The message names the operation, the object and the errno:
/// <c>bpf_map_update_batch(mesh_policy): E2BIG (inserted 10 of 20)</c>.</summary>
internal class BpfException(string operation, string target, int errno, string? detail = null)
    : Exception($"{operation}({target}): {Interop.Errno.Name(errno)}{(detail is null ? "" : $" ({detail})")}")
{
    public int ErrorNumber { get; } = Math.Abs(errno);
}

internal sealed class BpfKeyNotFound(string operation, string map) : BpfException(operation, map, Interop.Errno.ENOENT);
