using System.Diagnostics;
using System.Text;

namespace Mesh.Bench.Datapath;

/// <summary>
/// The iptables baseline, in the node namespace's FORWARD chain (pod-to-pod traffic is routed through the node):
/// default DROP; replies of tracked connections accepted first (Mesh passes replies by conntrack too); then
/// <c>entries - 1</c> allows from sources no packet carries, and last the allow the traffic needs. So every
/// packet in the original direction walks the whole list, as every such packet is judged by Mesh's policy.
/// Loaded with one iptables-restore; removed the same way, and its tables deleted when the backend is nf_tables.
/// </summary>
internal sealed class IptablesRuleSet(string nodeNetns, RrPair pods, int port, int entries)
{
    public void Install() => Run("iptables-restore", Rules());

    /// <summary>Back to no filtering at all: empty chains, ACCEPT, then (nf_tables) no table, so no hook runs.</summary>
    public void Remove()
    {
        Run("iptables-restore", "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
        if (Backend.Contains("nf_tables", StringComparison.Ordinal) && CanRun("nft")) Run("nft", "", "delete", "table", "ip", "filter");
    }

    /// <summary>"iptables v1.8.9 (nf_tables)" or "(legacy)": which kernel machinery the numbers are of.</summary>
    public static string Backend { get; } = Capture("iptables", "-V").Trim();

    private string Rules()
    {
        var text = new StringBuilder("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
        text.Append("-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED --ctdir REPLY -j ACCEPT\n");
        // Sources from 10.209.0.0/16: inside the lab's 10.2xx range, and never the address of a bench pod.
        for (var j = 0; j < entries - 1; j++)
            text.Append($"-A FORWARD -s 10.209.{j / 250}.{j % 250 + 1}/32 -d {pods.Server.Ip}/32 -p tcp -m tcp --dport {port} -j ACCEPT\n");
        text.Append($"-A FORWARD -s {pods.Client.Ip}/32 -d {pods.Server.Ip}/32 -p tcp -m tcp --dport {port} -j ACCEPT\n");
        return text.Append("COMMIT\n").ToString();
    }

    private void Run(string program, string input, params string[] args)
    {
        var info = Start([$"--net=/run/netns/{nodeNetns}", program, .. args]);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {program}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        process.StandardInput.Write(input);
        process.StandardInput.Close();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} in {nodeNetns} failed (exit {process.ExitCode}): {stderr.Result.Trim()} {stdout.Result.Trim()}");
    }

    private static ProcessStartInfo Start(IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("nsenter")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        return info;
    }

    private static bool CanRun(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => File.Exists(Path.Combine(dir, program)));

    private static string Capture(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        try
        {
            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
            process.WaitForExit();
            return output;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{program} is not installed (./dev bench installs it): {e.Message}", e);
        }
    }
}
