using System.Net;

namespace Mesh.Lab.Tests;

public sealed class DnsRecordTests
{
    [Theory]
    [InlineData("api.example.com", "api.example.com")]
    [InlineData("API.Example.COM.", "api.example.com")]
    [InlineData(" web ", "web")]
    [InlineData("a-1.b-2.c", "a-1.b-2.c")]
    public void Record_names_are_normalized_as_dnsmasq_answers_them(string name, string expected) =>
        Assert.Equal(expected, LabDnsmasq.NormalizeName(name));

    [Theory]
    [InlineData("")]
    [InlineData("-api.example.com")]
    [InlineData("api-.example.com")]
    [InlineData("api..example.com")]
    [InlineData("api_x.example.com")]
    [InlineData("*.example.com")]
    public void Names_that_are_not_DNS_names_are_refused(string name)
    {
        var error = Assert.Throws<LabException>(() => LabDnsmasq.NormalizeName(name));
        Assert.Contains("invalid DNS name", error.Message);
    }

    [Fact]
    public void A_label_longer_than_63_characters_is_refused() =>
        Assert.Throws<LabException>(() => LabDnsmasq.NormalizeName(new string('a', 64) + ".com"));

    [Theory]
    [InlineData("10.202.0.1", "10.202.0.1")]
    [InlineData("2001:DB8:0::1", "2001:db8::1")]
    public void Addresses_are_IPv4_for_A_and_IPv6_for_AAAA_in_canonical_form(string address, string expected) =>
        Assert.Equal(expected, LabDnsmasq.NormalizeAddress(address));

    [Theory]
    [InlineData("10.1")]
    [InlineData("example.com")]
    [InlineData("10.202.0.300")]
    public void Anything_else_is_not_an_address(string address) =>
        Assert.Throws<LabException>(() => LabDnsmasq.NormalizeAddress(address));

    [Fact]
    public void The_hosts_file_has_one_line_per_address_and_name()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mesh-hosts-{Guid.NewGuid():N}", "hosts");
        try
        {
            LabDnsmasq.WriteHosts(path, new SortedDictionary<string, List<string>>(StringComparer.Ordinal)
            {
                ["api.example.com"] = ["10.202.0.1", "2001:db8::1"],
                ["db"] = ["10.201.1.3"],
            });
            var lines = File.ReadAllLines(path).Where(l => !l.StartsWith('#')).ToList();
            Assert.Equal(["10.202.0.1 api.example.com", "2001:db8::1 api.example.com", "10.201.1.3 db"], lines);
        }
        finally { Directory.Delete(Path.GetDirectoryName(path)!, recursive: true); }
    }

    [Fact]
    public void The_DNS_pod_keeps_its_own_named_ports_through_the_state_file()
    {
        var directory = Path.Combine(Path.GetTempPath(), $"mesh-state-{Guid.NewGuid():N}");
        try
        {
            var store = new LabStateStore(directory, "lab1");
            var state = new LabState { Lab = "lab1", Dns = new LabDnsServer { Pod = "kube-system/kube-dns", Ip = "10.201.1.2", TtlSeconds = 5 } };
            state.Pods.Add(new LabPod { Namespace = "kube-system", Name = "kube-dns", Ports = [.. Lab.DnsPorts] });
            state.Pods.Add(new LabPod { Namespace = "default", Name = "web" });
            store.Save(state);

            var read = store.Load()!;

            Assert.Equal(Lab.DnsPorts, read.Pod("kube-system", "kube-dns")!.ServedPorts);
            Assert.Equal(PodServer.NamedPorts, read.Pod("default", "web")!.ServedPorts);
            Assert.Equal(5, read.Dns!.TtlSeconds);
        }
        finally { Directory.Delete(directory, recursive: true); }
    }

    [Fact]
    public async Task Resolving_an_IPv4_literal_asks_no_server()
    {
        var state = new LabState { Lab = "lab1" };
        var from = new LabPlace(LabPlaceKind.Pod, "default/a", "lab1-pod-default-a", IPAddress.Parse("10.201.1.2"));
        Assert.Equal(IPAddress.Parse("93.184.216.34"), await LabDns.ResolveAsync(state, from, "93.184.216.34", TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_query_without_the_lab_s_DNS_says_how_to_start_it()
    {
        var state = new LabState { Lab = "lab1" };
        var from = new LabPlace(LabPlaceKind.Pod, "default/a", "lab1-pod-default-a", IPAddress.Parse("10.201.1.2"));
        var error = await Assert.ThrowsAsync<LabException>(() => LabDns.QueryAsync(state, from, "api.example.com", LabDnsType.A, ct: TestContext.Current.CancellationToken));
        Assert.Contains("meshctl lab dns up", error.Message);
    }
}
