namespace Messaging.Node.Admin;

/// <summary>
/// The admin credential: <c>Messaging:Admin:Token</c> when configured, else a random token made on first start and
/// kept in the data directory (file <c>admin-token</c>, mode 0600), where the <c>admin</c> command on the same
/// machine (or in the same container) finds it.
/// </summary>
public static class AdminTokens
{
    public const string FileName = "admin-token";
    public const int MinimumLength = 16;

    public static string Resolve(NodeSettings settings) =>
        settings.Admin.Token is { Length: > 0 } configured ? configured.Trim() : ReadOrCreate(settings);

    /// <summary>What the CLI uses: the configured token or the kept file; null when neither exists (it never creates one).</summary>
    public static string? Find(NodeSettings settings)
    {
        if (settings.Admin.Token is { Length: > 0 } configured)
            return configured.Trim();
        var path = PathOf(settings);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    public static string PathOf(NodeSettings settings) => Path.Combine(settings.DataDirectoryPath, FileName);

    private static string ReadOrCreate(NodeSettings settings)
    {
        var path = PathOf(settings);
        var token = SecretFiles.ReadOrCreate(path);
        if (token.Length < MinimumLength)
            throw new NodeConfigurationException($"{path} holds fewer than {MinimumLength} characters; delete it or set Messaging:Admin:Token");
        return token;
    }
}
