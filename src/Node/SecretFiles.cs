using System.Security.Cryptography;
using System.Text;

namespace Messaging.Node;

/// <summary>
/// A random secret kept in a file of the data directory (mode 0600), made on first use. Both the signing key and the
/// admin token are kept this way, so a restart keeps the tokens it issued and the CLI finds the admin token.
/// </summary>
public static class SecretFiles
{
    /// <summary>The file's trimmed text, after making the file with a fresh random secret if it does not exist.</summary>
    public static string ReadOrCreate(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (!File.Exists(path))
            TryCreate(path);
        return File.ReadAllText(path).Trim();
    }

    /// <summary>Written under a temporary name and moved into place, so two processes starting at once agree on one secret.</summary>
    private static void TryCreate(string path)
    {
        var text = System.Buffers.Text.Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(64));
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temporary, options))
        {
            stream.Write(Encoding.UTF8.GetBytes(text));
            stream.Flush(flushToDisk: true);
        }
        try
        {
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary); // another process made it first: use theirs
        }
    }
}
