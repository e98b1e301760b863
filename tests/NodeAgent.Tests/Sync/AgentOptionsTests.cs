using Mesh.NodeAgent.Hubble;
using Mesh.NodeAgent.Sync;

namespace Mesh.NodeAgent.Tests.Sync;

public sealed class AgentOptionsTests
{
    [Fact]
    public void Control_plane_takes_a_comma_separated_list_of_replicas_in_order()
    {
        var options = AgentOptions.Parse(["--node", "n", "--control-plane", "http://10.0.0.1:7081, https://cp-2.mesh:7081"]);

        Assert.Equal([new Uri("http://10.0.0.1:7081"), new Uri("https://cp-2.mesh:7081")], options.ControlPlaneReplicas);
    }

    [Fact]
    public void Control_plane_with_one_address_is_one_replica()
    {
        var options = AgentOptions.Parse(["--node", "n", "--control-plane", "http://127.0.0.1:7081"]);

        Assert.Equal([new Uri("http://127.0.0.1:7081")], options.ControlPlaneReplicas);
    }

    [Theory]
    [InlineData("http://10.0.0.1:7081,10.0.0.2:7081", "10.0.0.2:7081")]
    [InlineData("http://10.0.0.1:7081,,http://10.0.0.2:7081", "")]
    [InlineData("ftp://10.0.0.1:7081", "ftp://10.0.0.1:7081")]
    [InlineData("/var/run/mesh.sock", "/var/run/mesh.sock")]
    public void Control_plane_refuses_an_address_that_is_not_an_absolute_http_uri_naming_the_flag(string list, string bad)
    {
        var e = Assert.Throws<ArgumentException>(() => AgentOptions.Parse(["--node", "n", "--control-plane", list]));

        Assert.StartsWith($"--control-plane: '{bad}' in '{list}' is not an absolute http:// or https:// address", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_Hubble_socket_is_in_the_state_dir_unless_given_and_the_buffer_size_is_configurable()
    {
        var defaults = AgentOptions.Parse(["--node", "n", "--state-dir", "/var/lib/mesh/agent/n"]);
        var given = AgentOptions.Parse(["--node", "n", "--hubble-socket", "/run/mesh/hubble.sock", "--hubble-buffer-size", "4095"]);

        Assert.Equal(("/var/lib/mesh/agent/n/hubble.sock", 65_536), (defaults.HubbleSocketPath, defaults.HubbleBufferSize));
        Assert.Equal(("/run/mesh/hubble.sock", 4095), (given.HubbleSocketPath, given.HubbleBufferSize));
    }

    [Fact]
    public void The_CNI_socket_is_where_mesh_cni_looks_by_default_unless_given()
    {
        Assert.Equal("/var/run/mesh/cni.sock", AgentOptions.Parse(["--node", "n"]).CniSocket);
        Assert.Equal("/run/lab/cni.sock", AgentOptions.Parse(["--node", "n", "--cni-socket", "/run/lab/cni.sock"]).CniSocket);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("lots")]
    public void Hubble_buffer_size_refuses_what_is_not_a_positive_number(string size)
    {
        var e = Assert.Throws<ArgumentException>(() => AgentOptions.Parse(["--node", "n", "--hubble-buffer-size", size]));

        Assert.StartsWith($"--hubble-buffer-size: '{size}' is not a positive number of flows", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hubble_buffer_size_refuses_more_flows_than_an_agent_holds()
    {
        Assert.Equal(FlowBuffer.MaxCapacity, AgentOptions.Parse(["--node", "n", "--hubble-buffer-size", "1048576"]).HubbleBufferSize);
        var e = Assert.Throws<ArgumentException>(() => AgentOptions.Parse(["--node", "n", "--hubble-buffer-size", "1048577"]));

        Assert.StartsWith("--hubble-buffer-size: 1048577 flows is more than the 1048576 one agent holds", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Metrics_are_off_unless_a_listen_address_is_given_with_a_token_file()
    {
        var off = AgentOptions.Parse(["--node", "n"]);
        var on = AgentOptions.Parse(["--node", "n", "--metrics-listen", "[::1]:9965", "--metrics-token-file", "/etc/mesh/metrics-token"]);

        Assert.Null(off.MetricsListen);
        Assert.Equal((new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, 9965), "/etc/mesh/metrics-token"), (on.MetricsListen, on.MetricsTokenFile));
    }

    [Fact]
    public void Metrics_without_a_token_file_are_refused_naming_the_flag()
    {
        var e = Assert.Throws<ArgumentException>(() => AgentOptions.Parse(["--node", "n", "--metrics-listen", "127.0.0.1:9965"]));

        Assert.StartsWith("--metrics-listen needs --metrics-token-file", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost:9965")]
    [InlineData("127.0.0.1:99999")]
    public void Metrics_listen_refuses_what_is_not_an_IP_and_a_port(string listen)
    {
        var e = Assert.Throws<ArgumentException>(() =>
            AgentOptions.Parse(["--node", "n", "--metrics-listen", listen, "--metrics-token-file", "/etc/mesh/metrics-token"]));

        Assert.StartsWith($"--metrics-listen: '{listen}' is not IP:PORT", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hubbles_export_flags_describe_the_static_exporter_and_the_flow_logs_file()
    {
        var options = AgentOptions.Parse([
            "--node", "n", "--hubble-export-file-path", "/var/log/mesh/flows.log", "--hubble-export-file-max-size-mb", "0.5",
            "--hubble-export-file-max-backups", "2", "--hubble-export-file-compress", "true",
            "--hubble-export-allowlist", """{"source_pod":["default/"]},{"verdict":["DROPPED"]}""", "--hubble-export-denylist", """{"destination_port":["53"]}""",
            "--hubble-export-fieldmask", "time, source.namespace,verdict",
            "--hubble-flowlogs-config-path", "/etc/mesh/flowlogs.yaml", "--hubble-flowlogs-config-check-interval", "0.25"]);

        var exporter = options.Export!.Static!;
        Assert.Equal(("/var/log/mesh/flows.log", 512 * 1024L, 2, true), (exporter.FilePath, exporter.FileMaxBytes, exporter.FileMaxBackups, exporter.FileCompress));
        Assert.Equal(2, exporter.IncludeFilters.Count);
        Assert.Equal(["53"], Assert.Single(exporter.ExcludeFilters).DestinationPort);
        Assert.Equal(["time", "source.namespace", "verdict"], exporter.FieldMask);
        Assert.Equal(("/etc/mesh/flowlogs.yaml", TimeSpan.FromMilliseconds(250)), (options.Export.ConfigPath, options.Export.CheckInterval));
    }

    [Fact]
    public void Without_export_flags_nothing_is_exported()
    {
        var export = AgentOptions.Parse(["--node", "n"]).Export!;

        Assert.Equal((null, null), (export.Static, export.ConfigPath));
    }

    [Theory]
    [InlineData("--hubble-export-fieldmask", "time,source.pod", "--hubble-export-fieldmask[1]: \"source.pod\" is not a field of flow.Flow")]
    [InlineData("--hubble-export-allowlist", "{\"verdicts\":[]}", "--hubble-export-allowlist[0]: ")]
    [InlineData("--hubble-export-denylist", "{\"source_fqdn\":[\"x.com\"]}", "--hubble-export-denylist[0].source_fqdn: Mesh's flows do not record it")]
    [InlineData("--hubble-export-file-max-size-mb", "ten", "--hubble-export-file-max-size-mb: 'ten' is not a number")]
    [InlineData("--hubble-export-file-compress", "yes", "--hubble-export-file-compress: 'yes' is not true or false")]
    public void Export_flags_that_cannot_be_honoured_are_refused_naming_the_flag(string flag, string value, string error)
    {
        var e = Assert.Throws<ArgumentException>(() => AgentOptions.Parse(["--node", "n", "--hubble-export-file-path", "stdout", flag, value]));

        Assert.StartsWith(error, e.Message, StringComparison.Ordinal);
    }
}
