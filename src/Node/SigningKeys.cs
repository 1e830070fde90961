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

        var path = Path.Combine(settings.DataDirectoryPath, FileName);
        var key = SecretFiles.ReadOrCreate(path);
        if (Encoding.UTF8.GetByteCount(key) < Http.MessagingAuth.MinimumKeyBytes)
            throw new NodeConfigurationException($"{path} holds fewer than {Http.MessagingAuth.MinimumKeyBytes} bytes; delete it or set Messaging:Auth:SigningKey");
        return Encoding.UTF8.GetBytes(key);
    }
}
