using System.Text.Json.Nodes;

namespace Messaging.EndToEnd.Tests;

/// <summary>
/// The document a node serves at /openapi/v1.json passes Redocly's recommended rules (tests/OpenApi/lint.sh, with
/// tests/OpenApi/redocly.yaml) without errors; warnings are printed, not failed.
/// </summary>
public sealed class OpenApiLintSpecs(DefaultNodeFixture fixture) : IClassFixture<DefaultNodeFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_serve_a_document_that_lints_without_errors()
    {
        var document = await Save(await ServedDocument());

        var (exit, output) = await Lint(document);

        TestContext.Current.TestOutputHelper?.WriteLine(output);
        Assert.True(exit == 0, $"lint.sh exited {exit}:\n{output}");
    }

    [Fact]
    public async Task Should_fail_the_lint_of_a_document_with_an_error()
    {
        // The served document with a path whose template no longer names the parameter its operation declares.
        var served = JsonNode.Parse(await ServedDocument())!.AsObject();
        var paths = served["paths"]!.AsObject();
        const string route = "/v1/users/{userId}/conversations";
        var item = paths[route]!;
        Assert.True(paths.Remove(route));
        paths["/v1/users/{ownerId}/conversations"] = item;
        var document = await Save(served.ToJsonString());

        var (exit, output) = await Lint(document);

        Assert.True(exit == 1, $"lint.sh exited {exit}:\n{output}");
        Assert.Contains("path-parameters-defined", output);
    }

    private async Task<string> ServedDocument() => await fixture.Node.Anonymous.GetStringAsync("/openapi/v1.json", Ct);

    private static async Task<string> Save(string document)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("messaging-openapi-").FullName, "v1.json");
        await File.WriteAllTextAsync(path, document, Ct);
        return path;
    }

    // The first run installs the npm package.
    private static Task<(int Exit, string Output)> Lint(string document) => Command.ExitAndOutputAsync(
        "bash", [Path.Combine(Repository.Root, "tests", "OpenApi", "lint.sh"), document], TimeSpan.FromMinutes(3));
}
