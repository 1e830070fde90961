namespace Messaging.Client.Tests;

/// <summary>
/// The committed client (openapi.json and Generated/) is what generate.sh makes from the document the node serves now,
/// so the document and the client cannot drift apart. generate.sh restores the Kiota dotnet tool itself.
/// </summary>
public sealed class GeneratedClientSpecs(ClientNode node)
{
    private static readonly string Committed = Path.Combine(Repository.Root, "tests", "Client.Tests");

    [Fact]
    public async Task Should_be_what_Kiota_generates_from_the_served_document()
    {
        var fresh = Directory.CreateTempSubdirectory("messaging-client-generated-").FullName;
        await Command.RunAsync("bash", [Path.Combine(Committed, "generate.sh"), "--out", fresh, node.DocumentAddress.ToString()],
            TimeSpan.FromMinutes(5)); // the first run restores the tool

        var committed = ClientFiles(Committed);
        var generated = ClientFiles(fresh);
        var differences = committed.Keys.Union(generated.Keys).Order(StringComparer.Ordinal)
            .Where(file => !committed.TryGetValue(file, out var a) || !generated.TryGetValue(file, out var b) || a != b)
            .Select(file => !committed.ContainsKey(file) ? $"new: {file}" : !generated.ContainsKey(file) ? $"gone: {file}" : $"changed: {file}")
            .ToList();

        Assert.True(differences.Count == 0,
            "The committed client is not what Kiota generates from the served document; run tests/Client.Tests/generate.sh.\n" +
            string.Join('\n', differences));
        Directory.Delete(fresh, recursive: true);
    }

    /// <summary>The document and every generated file, by path relative to <paramref name="directory"/>.</summary>
    private static Dictionary<string, string> ClientFiles(string directory) =>
        Directory.EnumerateFiles(Path.Combine(directory, "Generated"), "*", SearchOption.AllDirectories)
            .Append(Path.Combine(directory, "openapi.json"))
            .ToDictionary(file => Path.GetRelativePath(directory, file), File.ReadAllText);
}
