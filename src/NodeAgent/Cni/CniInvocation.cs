using System.Collections;
using Mesh.Contracts.Input;

namespace Mesh.NodeAgent.Cni;

public enum CniCommand { Add, Del, Check, Version }

/// <summary>
/// What the container runtime passes in the environment (CNI spec: CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
/// CNI_IFNAME, CNI_ARGS, CNI_PATH). Each command demands what it needs, and a missing or malformed one is error 4.
/// </summary>
public sealed record CniInvocation(
    CniCommand Command,
    string ContainerId,
    string? Netns,
    string IfName,
    IReadOnlyDictionary<string, string> Args,
    IReadOnlyList<string> Path)
{
    public string? PodNamespace => Args.GetValueOrDefault("K8S_POD_NAMESPACE");
    public string? PodName => Args.GetValueOrDefault("K8S_POD_NAME");
    public string PodUid => Args.GetValueOrDefault("K8S_POD_UID") ?? "";

    public static CniCommand ParseCommand(IDictionary environment)
    {
        var text = environment["CNI_COMMAND"] as string;
        return text switch
        {
            "ADD" => CniCommand.Add,
            "DEL" => CniCommand.Del,
            "CHECK" => CniCommand.Check,
            "VERSION" => CniCommand.Version,
            null or "" => throw new CniError(CniError.InvalidEnvironment, "CNI_COMMAND is not set: a container runtime runs mesh-cni with CNI_COMMAND=ADD, DEL, CHECK or VERSION"),
            _ => throw new CniError(CniError.InvalidEnvironment, $"CNI_COMMAND {InputLimits.Quote(text)} is not ADD, DEL, CHECK or VERSION"),
        };
    }

    public static CniInvocation Parse(CniCommand command, IDictionary environment)
    {
        string? Get(string name) => environment[name] is string { Length: > 0 } value ? value : null;
        string Require(string name, string what) => Get(name)
            ?? throw new CniError(CniError.InvalidEnvironment, $"{name} is not set: {command.ToString().ToUpperInvariant()} needs {what}");

        var containerId = Require("CNI_CONTAINERID", "the container's id");
        var ifName = Require("CNI_IFNAME", "the name of the pod's interface (e.g. eth0)");
        if (ifName.Length > 15 || ifName.Any(c => c is '/' or ' ' or ':' || char.IsControl(c)) || ifName is "." or "..")
            throw new CniError(CniError.InvalidEnvironment, $"CNI_IFNAME {InputLimits.Quote(ifName)} is not an interface name (at most 15 characters, no '/', ':' or spaces)");
        // DEL must succeed for a pod whose namespace is already gone, so only ADD and CHECK insist on one.
        var netns = command == CniCommand.Del ? Get("CNI_NETNS") : Require("CNI_NETNS", "the path of the pod's network namespace (e.g. /var/run/netns/NAME)");
        if (command != CniCommand.Del && !File.Exists(netns))
            throw new CniError(CniError.InvalidEnvironment, $"CNI_NETNS {InputLimits.Quote(netns)} does not exist: it must be the path of the pod's network namespace");
        var args = ParseArgs(Get("CNI_ARGS"));
        if (command != CniCommand.Del && (!args.ContainsKey("K8S_POD_NAMESPACE") || !args.ContainsKey("K8S_POD_NAME")))
            throw new CniError(CniError.InvalidEnvironment,
                $"CNI_ARGS must name the pod with K8S_POD_NAMESPACE=...;K8S_POD_NAME=... (as the kubelet passes them); it is {InputLimits.Quote(Get("CNI_ARGS") ?? "")}");
        var path = Get("CNI_PATH")?.Split(':', StringSplitOptions.RemoveEmptyEntries) ?? [];
        return new CniInvocation(command, containerId, netns, ifName, args, path);
    }

    private static Dictionary<string, string> ParseArgs(string? text)
    {
        var args = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in (text ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=');
            if (equals <= 0)
                throw new CniError(CniError.InvalidEnvironment, $"CNI_ARGS: {InputLimits.Quote(pair)} is not KEY=VALUE (pairs are separated by ';')");
            args[pair[..equals]] = pair[(equals + 1)..];
        }
        return args;
    }
}
