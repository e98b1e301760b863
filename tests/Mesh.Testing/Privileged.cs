namespace Mesh.Testing;

/// <summary>
/// Gate for tests that need root, bpffs and network namespaces. On a laptop without them the test skips;
/// with MESH_REQUIRE_PRIVILEGED=1 (CI) a missing capability is a failure, never a skip.
/// </summary>
public static class Privileged
{
    public static bool Required => Environment.GetEnvironmentVariable("MESH_REQUIRE_PRIVILEGED") == "1";

    public static bool Available =>
        OperatingSystem.IsLinux() && Environment.UserName == "root" && Directory.Exists("/sys/fs/bpf") && File.Exists("/usr/sbin/ip");

    /// <summary>First line of every privileged test.</summary>
    public static void Require()
    {
        if (Available) return;
        if (Required) Assert.Fail("MESH_REQUIRE_PRIVILEGED=1 but this process cannot use BPF and network namespaces (needs root, /sys/fs/bpf, iproute2)");
        Assert.Skip("needs root, bpffs and iproute2");
    }
}
