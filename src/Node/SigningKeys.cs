using System.Security.Cryptography;
using System.Text;

namespace Messaging.Node;

/// <summary>
/// The HS256 key: <c>Messaging:Auth:SigningKey</c> when configured, else a random key made on first start and kept
/// in the data directory (file <c>signing-key</c>, mode 0600), so tokens survive restarts. Either way the key is the
/// UTF-8 bytes of the text, so the file's content works as a configured key too.
/// </summary>
public static class SigningKeys
{
    public const string FileName = "signing-key";

    public static byte[] Resolve(NodeSettings settings)
    {
        if (settings.Auth.SigningKey is { Length: > 0 } configured)
            return Encoding.UTF8.GetBytes(configured);

        var directory = settings.DataDirectoryPath;
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
            TryCreate(path);
        var key = File.ReadAllText(path).Trim();
        if (Encoding.UTF8.GetByteCount(key) < Http.MessagingAuth.MinimumKeyBytes)
            throw new NodeConfigurationException($"{path} holds fewer than {Http.MessagingAuth.MinimumKeyBytes} bytes; delete it or set Messaging:Auth:SigningKey");
        return Encoding.UTF8.GetBytes(key);
    }

    /// <summary>Written under a temporary name and moved into place, so two processes starting at once agree on one key.</summary>
    internal static void TryCreate(string path)
    {
        var text = Base64Url(RandomNumberGenerator.GetBytes(64));
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

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
