using System.Text.Json;
using Mesh.Contracts.Cni;

namespace Mesh.NodeAgent.Attachments;

/// <summary>
/// The pods mesh-cni attached to this node, by container id, in one JSON file under the agent's state directory. Each
/// change rewrites the file whole and renames it into place, so a crash leaves the old file or the new one, never a
/// torn one, and a restarted agent still knows every pod it holds.
/// </summary>
public sealed class AttachmentStore
{
    private readonly string path;
    private readonly Lock gate = new();
    private readonly Dictionary<string, PodAttachment> attachments;

    private AttachmentStore(string path, Dictionary<string, PodAttachment> attachments) => (this.path, this.attachments) = (path, attachments);

    public static string PathFor(string stateDir) => Path.Combine(stateDir, "cni-attachments.json");

    /// <summary>Reads the file when there is one; a file that does not parse is an error (nothing is guessed).</summary>
    public static AttachmentStore Open(string path)
    {
        if (!File.Exists(path)) return new AttachmentStore(path, new(StringComparer.Ordinal));
        try
        {
            var read = JsonSerializer.Deserialize(File.ReadAllText(path), CniJson.Default.DictionaryStringPodAttachment)
                ?? throw new IOException($"{path} holds null, not the CNI attachments");
            return new AttachmentStore(path, new(read, StringComparer.Ordinal));
        }
        catch (JsonException e)
        {
            throw new IOException($"{path} is not a JSON object of CNI attachments ({e.Message}): repair or remove it (the runtime re-adds its pods)", e);
        }
    }

    public IReadOnlyList<(string ContainerId, PodAttachment Attachment)> All()
    {
        lock (gate) return [.. attachments.Select(a => (a.Key, a.Value))];
    }

    public PodAttachment? Get(string containerId)
    {
        lock (gate) return attachments.GetValueOrDefault(containerId);
    }

    public void Put(string containerId, PodAttachment attachment)
    {
        lock (gate)
        {
            attachments[containerId] = attachment;
            SaveLocked();
        }
    }

    /// <returns>the attachment that was removed, or null when none was known</returns>
    public PodAttachment? Remove(string containerId)
    {
        lock (gate)
        {
            if (!attachments.Remove(containerId, out var removed)) return null;
            SaveLocked();
            return removed;
        }
    }

    private void SaveLocked()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(file, attachments, CniJson.Default.DictionaryStringPodAttachment);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
