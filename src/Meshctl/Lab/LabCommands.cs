using Mesh.Meshctl.Cli;
using System.CommandLine;
using Mesh.Lab;

namespace Mesh.Meshctl.Lab;

/// <summary>
/// meshctl lab: simulated nodes and pods in network namespaces on this machine, so policies can be tried on real
/// traffic without Kubernetes. The namespace work is done by Mesh.Lab; these commands add the control
/// plane (endpoint registration, the agents' gRPC address) and the output.
/// </summary>
public static class LabCommands
{
    public static Command Build()
    {
        var lab = new Command("lab", "A local lab: nodes and pods as network namespaces, with real agents enforcing policy")
        {
            LabUpDownCommands.Up(),
            LabUpDownCommands.Down(),
            LabNamespaceCommands.Build(),
            LabPodCommands.Build(),
            LabAgentCommands.Build(),
            LabProbeCommands.Probe(),
            LabProbeCommands.Matrix(),
            LabCurlCommand.Build(),
            LabNodeCommands.Build(),
            LabOutsideCommands.Build(),
            LabDnsCommands.Build(),
            LabDnsCommands.Dig(),
            LabUpDownCommands.Register(),
            Serve(),
        };
        lab.Options.Add(LabContext.LabName);
        return lab;
    }

    /// <summary>The process inside each pod (started by `lab pod add`); hidden because people never run it.</summary>
    private static Command Serve()
    {
        var netns = new Option<string>("--netns") { Description = "The pod's network namespace", Required = true };
        var pod = new Option<string?>("--pod") { Description = "The pod's NS/NAME, for its answers and log" };
        var tcpPorts = new Option<int[]>("--tcp-port") { Description = "Serve only these TCP ports (HTTP, else line echo) instead of a pod's ports" };
        var command = new Command("serve", "Serve a pod's ports (HTTP and echo on 80, echo on 81, UDP echo, gRPC health on 9090) inside a network namespace")
        {
            netns, pod, tcpPorts,
        };
        command.Hidden = true;
        command.SetAction(parse =>
        {
            var only = parse.GetValue(tcpPorts) is { Length: > 0 } list ? list.Select(Mesh.Lab.Lab.NodeListenerPort).ToList() : null;
            return PodServer.RunUntilTerminated(parse.GetValue(netns)!, parse.GetValue(pod) ?? parse.GetValue(netns)!, only);
        });
        return command;
    }
}
