namespace Mesh.Contracts.Identity;

/// <summary>Security identity. Bits 0–15 index, 16–23 cluster id, bit 24 = node-local (CIDR/FQDN).</summary>
public readonly record struct NumericIdentity(uint Value)
{
    /// <summary>Cluster-scoped identities are (clusterId &lt;&lt; ClusterIdShift) | n.</summary>
    public const int ClusterIdShift = 16;
    /// <summary>Set on identities derived from CIDRs and FQDNs; they never leave the nodes that need them.</summary>
    public const uint LocalScopeFlag = 1u << 24;
    /// <summary>The first index allocated from labels; 1..255 are reserved.</summary>
    public const uint MinimalAllocated = 256;
    public const uint MaximalAllocated = 65535;

    public static readonly NumericIdentity Unknown = new(0);
    public static readonly NumericIdentity Host = new(1);
    public static readonly NumericIdentity World = new(2);
    public static readonly NumericIdentity Unmanaged = new(3);
    public static readonly NumericIdentity Health = new(4);
    public static readonly NumericIdentity Init = new(5);
    public static readonly NumericIdentity RemoteNode = new(6);
    public static readonly NumericIdentity KubeApiServer = new(7);
    public static readonly NumericIdentity Ingress = new(8);

    public bool IsReserved => Value is > 0 and < MinimalAllocated;
    public bool IsLocalScope => (Value & LocalScopeFlag) != 0;
    public byte ClusterId => (byte)((Value >> ClusterIdShift) & 0xFF);

    public static NumericIdentity ForCluster(byte clusterId, uint index) =>
        index is < MinimalAllocated or > MaximalAllocated
            ? throw new ArgumentOutOfRangeException(nameof(index), index, $"label identities are {MinimalAllocated}..{MaximalAllocated}")
            : new(((uint)clusterId << ClusterIdShift) | index);

    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
