using Mesh.Contracts.Security;

namespace Mesh.Lab;

/// <summary>
/// Each lab agent authenticates as its node: the lab adds a token with the group <c>mesh:node:NAME</c> to the control
/// plane's token file (which the control plane reads again when it changes) and hands it to the agent in a file of its
/// own, readable by root only. A node that already has a token in the file keeps it, so restarting an agent adds nothing.
/// </summary>
public static class LabNodeTokens
{
    public static string UserOf(string node) => $"node:{node}";

    /// <returns>the path of the agent's token file</returns>
    public static string Issue(string controlPlaneTokenFile, string node, string agentTokenPath)
    {
        var user = UserOf(node);
        var existing = File.Exists(controlPlaneTokenFile)
            ? StaticTokenFile.Parse(File.ReadAllText(controlPlaneTokenFile), controlPlaneTokenFile)
                .FirstOrDefault(t => t.User == user && t.Groups.Contains($"mesh:node:{node}"))
            : null;
        var token = existing?.Token ?? StaticTokenFile.NewToken();
        // One write of one whole line: O_APPEND keeps lines of labs adding nodes at once from mixing.
        if (existing is null) File.AppendAllText(controlPlaneTokenFile, StaticTokenFile.Line(token, user, user, [$"mesh:node:{node}"]));
        Directory.CreateDirectory(Path.GetDirectoryName(agentTokenPath)!);
        File.WriteAllText(agentTokenPath, token + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(agentTokenPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return agentTokenPath;
    }
}
