using System.Globalization;

namespace Mesh.NodeAgent.Datapath.Interop;

/// <summary>
/// Pinned maps by layout: an agent pins under &lt;pin root&gt;/v&lt;Version&gt;/ and re-uses only pins of its own
/// layout. Programs of an older layout keep their maps alive while they stay attached (a pin is only a name), so
/// the older directories can go as soon as the new maps are loaded: the kernel keeps enforcing the old version
/// until the first apply replaces each program in place.
/// </summary>
internal static class MapLayout
{
    /// <summary>Must equal MESH_MAP_LAYOUT in bpf/lib/maps.h (checked by MapLayoutTests); its history is there.</summary>
    public const int Version = 7;

    public static string Directory(string pinRoot) => Path.Combine(pinRoot, $"v{Version}");

    /// <summary>Removes the pins of older layouts: v&lt;N&gt; directories with N below <see cref="Version"/>, and pins
    /// directly under the root (the layout before pins were versioned). Newer layouts are left alone, so an agent
    /// rolled back never destroys what a newer one still needs. Returns what was removed.</summary>
    public static List<string> RemoveOlder(string pinRoot)
    {
        var removed = new List<string>();
        if (!System.IO.Directory.Exists(pinRoot)) return removed;
        foreach (var file in System.IO.Directory.EnumerateFiles(pinRoot))
        {
            File.Delete(file);
            removed.Add(file);
        }
        foreach (var dir in System.IO.Directory.EnumerateDirectories(pinRoot))
        {
            var name = Path.GetFileName(dir);
            if (name.Length > 1 && name[0] == 'v'
                && int.TryParse(name.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var layout) && layout < Version)
            {
                System.IO.Directory.Delete(dir, recursive: true);
                removed.Add(dir);
            }
        }
        return removed;
    }
}
