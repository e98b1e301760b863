namespace Mesh.Contracts.Identity;

/// <summary>
/// Security identity. Bits 0–15 index, 16–23 cluster id, bit 24 = node-local (CIDR/FQDN); a node-local identity with
/// bits 25–31 set is an address group of the label identity in bits 0–23 (see <see cref="ForAddressGroup"/>).
/// </summary>
public readonly record struct NumericIdentity(uint Value)
{
    /// <summary>Cluster-scoped identities are (clusterId &lt;&lt; ClusterIdShift) | n.</summary>
    public const int ClusterIdShift = 16;
    /// <summary>
    /// Set on identities the compiler makes rather than the log allocates: those of CIDRs and FQDNs, which never leave
    /// the nodes that need them, and address groups.
    /// </summary>
    public const uint LocalScopeFlag = 1u << 24;
    /// <summary>The first index allocated from labels; 1..255 are reserved.</summary>
    public const uint MinimalAllocated = 256;
    public const uint MaximalAllocated = 65535;
    /// <summary>
    /// Address groups are (group &lt;&lt; AddressGroupShift) | LocalScopeFlag | label identity: CIDR and FQDN identities
    /// are numbered up from LocalScopeFlag and never reach bit 25, so the two never collide.
    /// </summary>
    public const int AddressGroupShift = 25;
    /// <summary>The most address groups one label identity can have (bits 25–31).</summary>
    public const uint MaxAddressGroup = (1u << (32 - AddressGroupShift)) - 1;
    private const uint LabelIdentityMask = LocalScopeFlag - 1;

    public static readonly NumericIdentity Unknown = new(0);
    public static readonly NumericIdentity Host = new(1);
    public static readonly NumericIdentity World = new(2);
    public static readonly NumericIdentity Unmanaged = new(3);
    public static readonly NumericIdentity Health = new(4);
    public static readonly NumericIdentity Init = new(5);
    public static readonly NumericIdentity RemoteNode = new(6);
    public static readonly NumericIdentity KubeApiServer = new(7);
    public static readonly NumericIdentity Ingress = new(8);

    /// <summary>Cilium's names of the reserved identities (their label is <c>reserved:NAME</c>).</summary>
    public static readonly IReadOnlyDictionary<uint, string> ReservedNames = new Dictionary<uint, string>
    {
        [Host.Value] = "host", [World.Value] = "world", [Unmanaged.Value] = "unmanaged", [Health.Value] = "health",
        [Init.Value] = "init", [RemoteNode.Value] = "remote-node", [KubeApiServer.Value] = "kube-apiserver", [Ingress.Value] = "ingress",
    };

    /// <summary>The name of a reserved identity ("world"), or null for any other.</summary>
    public string? ReservedName => ReservedNames.GetValueOrDefault(Value);

    public bool IsReserved => Value is > 0 and < MinimalAllocated;
    public bool IsLocalScope => (Value & LocalScopeFlag) != 0;
    public byte ClusterId => (byte)((Value >> ClusterIdShift) & 0xFF);

    /// <summary>Whether this identity is in the cluster's label range (below the node-local flag), so address groups can carry it.</summary>
    public bool CanHaveAddressGroups => Value is >= MinimalAllocated and < LocalScopeFlag;

    /// <summary>Whether this is an address group: some addresses of a label identity, carrying its labels.</summary>
    public bool IsAddressGroup => IsLocalScope && Value >> AddressGroupShift != 0;

    /// <summary>The identity whose labels this one carries: the label identity of an address group, else itself.</summary>
    public NumericIdentity LabelIdentity => IsAddressGroup ? new(Value & LabelIdentityMask) : this;

    public static NumericIdentity ForCluster(byte clusterId, uint index) =>
        index is < MinimalAllocated or > MaximalAllocated
            ? throw new ArgumentOutOfRangeException(nameof(index), index, $"label identities are {MinimalAllocated}..{MaximalAllocated}")
            : new(((uint)clusterId << ClusterIdShift) | index);

    /// <summary>
    /// Address group <paramref name="group"/> (1..<see cref="MaxAddressGroup"/>) of a label identity: a node-local
    /// identity that some of its endpoints' addresses map to when a Kubernetes ipBlock covers them and not the others.
    /// The label identity is part of the number, so anything that sees it (a flow, a named-port lookup) can name the pod.
    /// </summary>
    public static NumericIdentity ForAddressGroup(NumericIdentity labels, uint group)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(group, 1u);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(group, MaxAddressGroup);
        if (!labels.CanHaveAddressGroups)
            throw new ArgumentOutOfRangeException(nameof(labels), labels.Value, "address groups belong to cluster label identities");
        return new((group << AddressGroupShift) | LocalScopeFlag | labels.Value);
    }

    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
