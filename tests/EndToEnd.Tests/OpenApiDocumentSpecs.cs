using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;

namespace Messaging.EndToEnd.Tests;

/// <summary>
/// The document a node serves at /openapi/v1.json against API.md. The expected tables are written from API.md, never
/// read from the document or the code, so a route, status code, required field or security requirement that drifts
/// on either side fails here.
/// </summary>
public sealed class OpenApiDocumentSpecs(DefaultNodeFixture fixture) : IClassFixture<DefaultNodeFixture>
{
    private const string Bearer = "Bearer";

    /// <param name="RequiredResponse">Required fields of the 200 body; <c>a[].b</c> is field b of a's items.</param>
    private sealed record Route(
        string Method, string Path, string? OperationId, int[] Statuses, bool Secured,
        string[] RequiredRequest, string[] OptionalRequest, string[] RequiredResponse);

    // API.md, v1 and "Health and description" (the v1.1 routes are not built yet).
    private static readonly Route[] Contract =
    [
        new("POST", "/v1/messages", "sendMessage", [200, 400, 401, 403, 409, 413, 429, 503], Secured: true,
            RequiredRequest: ["recipientIds", "message", "clientMessageId"], OptionalRequest: ["senderId"],
            RequiredResponse: ["sendStatus", "messageId", "conversationId", "serverTimestamp"]),
        new("GET", "/v1/users/{userId}/conversations", "fetchConversation", [200, 400, 401, 403, 503], Secured: true,
            RequiredRequest: [], OptionalRequest: [],
            RequiredResponse:
            [
                "conversations", "isDBupdate", "conversations[].conversationId", "conversations[].participantIds",
                "conversations[].snippet", "conversations[].lastUpdatedTimestamp",
            ]),
        new("GET", "/v1/users/{userId}/conversations/{conversationId}/messages", OperationId: null,
            [200, 400, 401, 403, 404, 503], Secured: true,
            RequiredRequest: [], OptionalRequest: [],
            RequiredResponse:
            [
                "messages", "messages[].messageId", "messages[].conversationId", "messages[].seq", "messages[].senderId",
                "messages[].recipientIds", "messages[].message", "messages[].clientMessageId", "messages[].serverTimestamp",
            ]),
        new("GET", "/healthz/live", null, [200], Secured: false, [], [], []),
        new("GET", "/healthz/ready", null, [200, 503], Secured: false, [], [], []),
        new("GET", "/openapi/v1.json", null, [200], Secured: false, [], [], []),
    ];

    private static readonly string[] SendFailureStatuses = ["Invalid", "Unauthorized", "Forbidden", "Conflict", "TooLarge", "RateLimited", "Unavailable"];
    private static readonly string[] SendSuccessStatuses = ["Sent", "Accepted", "Duplicate"];

    private readonly TestNode _node = fixture.Node;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_parse_as_OpenAPI_without_errors()
    {
        var text = await _node.Anonymous.GetStringAsync("/openapi/v1.json", Ct);

        var read = OpenApiDocument.Parse(text, "json", new OpenApiReaderSettings());

        Assert.NotNull(read.Document);
        Assert.Empty(read.Diagnostic?.Errors.Select(error => error.ToString()) ?? []);
        Assert.Equal(OpenApiSpecVersion.OpenApi3_1, read.Diagnostic?.SpecificationVersion);
    }

    [Fact]
    public async Task Should_describe_exactly_the_routes_of_the_contract()
    {
        var document = await DocumentAsync();

        var described = document.Paths
            .SelectMany(path => path.Value.Operations?.Keys.Select(method => $"{method.Method} {path.Key}") ?? [])
            .Order();

        Assert.Equal(Contract.Select(route => $"{route.Method} {route.Path}").Order(), described);
    }

    [Fact]
    public Task Should_give_each_route_the_status_codes_and_operation_id_of_the_contract() =>
        AssertEveryRouteAgrees(StatusesAndOperationId);

    [Fact]
    public Task Should_require_the_request_fields_of_the_contract_none_nullable() =>
        AssertEveryRouteAgrees(RequestFields);

    [Fact]
    public Task Should_require_the_response_fields_of_the_contract() =>
        AssertEveryRouteAgrees(ResponseFields);

    [Fact]
    public async Task Should_require_a_bearer_JWT_on_the_v1_routes_and_nothing_on_the_others()
    {
        var document = await DocumentAsync();
        var scheme = Assert.Contains(Bearer, document.Components?.SecuritySchemes ?? new Dictionary<string, IOpenApiSecurityScheme>());
        Assert.Equal(SecuritySchemeType.Http, scheme.Type);
        Assert.Equal("bearer", scheme.Scheme, ignoreCase: true);
        Assert.Equal("JWT", scheme.BearerFormat);
        Assert.Empty(document.Security ?? []);

        await AssertEveryRouteAgrees(Security);
    }

    [Fact]
    public Task Should_give_each_v1_operation_a_request_and_a_success_example() =>
        AssertEveryRouteAgrees(Examples);

    private static IEnumerable<string> StatusesAndOperationId(Route route, OpenApiOperation operation)
    {
        var statuses = operation.Responses?.Keys.Select(int.Parse).Order().ToArray() ?? [];
        if (!statuses.SequenceEqual(route.Statuses.Order()))
            yield return $"statuses [{string.Join(", ", statuses)}], contract [{string.Join(", ", route.Statuses)}]";
        if (route.OperationId is not null && operation.OperationId != route.OperationId)
            yield return $"operationId {operation.OperationId}, contract {route.OperationId}";
        if (string.IsNullOrEmpty(operation.OperationId))
            yield return "no operationId";
    }

    private static IEnumerable<string> RequestFields(Route route, OpenApiOperation operation)
    {
        var body = operation.RequestBody?.Content?["application/json"].Schema;
        if (body is null)
        {
            if (route.RequiredRequest.Length + route.OptionalRequest.Length > 0)
                yield return "no JSON request body";
            yield break;
        }
        var required = body.Required?.Order().ToArray() ?? [];
        if (!required.SequenceEqual(route.RequiredRequest.Order()))
            yield return $"required [{string.Join(", ", required)}], contract [{string.Join(", ", route.RequiredRequest)}]";
        var fields = body.Properties?.Keys.Order().ToArray() ?? [];
        if (!fields.SequenceEqual(route.RequiredRequest.Concat(route.OptionalRequest).Order()))
            yield return $"fields [{string.Join(", ", fields)}]";
        foreach (var (name, field) in body.Properties ?? new Dictionary<string, IOpenApiSchema>())
        {
            if (field.Type is { } type && type.HasFlag(JsonSchemaType.Null))
                yield return $"{name} is nullable";
        }
        if (body.AdditionalPropertiesAllowed)
            yield return "unknown members are a 400, but the body allows them";
    }

    private static IEnumerable<string> ResponseFields(Route route, OpenApiOperation operation)
    {
        if (route.RequiredResponse.Length == 0)
            yield break;
        var body = operation.Responses?["200"].Content?["application/json"].Schema;
        foreach (var field in route.RequiredResponse)
        {
            var (owner, name) = Owner(body, field);
            if (owner?.Required?.Contains(name) != true)
                yield return $"200 does not require {field}";
        }
    }

    private static IEnumerable<string> Security(Route route, OpenApiOperation operation)
    {
        var schemes = operation.Security?.SelectMany(requirement => requirement.Keys)
            .Select(reference => reference.Reference.Id).ToArray() ?? [];
        string[] expected = route.Secured ? [Bearer] : [];
        if (!schemes.SequenceEqual(expected))
            yield return $"security [{string.Join(", ", schemes)}], contract [{string.Join(", ", expected)}]";
    }

    private static IEnumerable<string> Examples(Route route, OpenApiOperation operation)
    {
        if (!route.Secured)
            yield break;
        if (operation.RequestBody?.Content?["application/json"] is { Example: null, Examples: null or { Count: 0 } })
            yield return "no request example";
        if (operation.Responses?["200"].Content?["application/json"] is not { Example: not null } and not { Examples.Count: > 0 })
            yield return "no 200 example";
    }

    [Fact]
    public async Task Should_give_send_failures_a_problem_body_with_sendStatus()
    {
        var document = await DocumentAsync();
        var send = Operation(document, Contract[0]);

        Assert.Equal(SendSuccessStatuses, Enum(send.Responses!["200"].Content!["application/json"].Schema!.Properties!["sendStatus"]));
        foreach (var (status, response) in send.Responses.Where(response => response.Key != "200"))
        {
            var problem = Assert.Contains("application/problem+json", response.Content ?? new Dictionary<string, OpenApiMediaType>()).Schema!;
            Assert.Superset(new HashSet<string> { "title", "status", "detail", "sendStatus" }, problem.Required!.ToHashSet());
            Assert.Equal(SendFailureStatuses.Order(), Enum(problem.Properties!["sendStatus"]).Order());
            if (status is "429" or "503")
                Assert.True(response.Headers?.ContainsKey("Retry-After"), $"{status} without Retry-After");
        }
    }

    [Fact]
    public async Task Should_state_the_constraints_of_the_contract()
    {
        var document = await DocumentAsync();
        var sendBody = Operation(document, Contract[0]).RequestBody!.Content!["application/json"].Schema!.Properties!;
        var conversations = Operation(document, Contract[1]);
        var thread = Operation(document, Contract[2]);

        AssertId(sendBody["senderId"], 64, valid: "a.B_9-z", invalid: "a b");
        AssertId(sendBody["recipientIds"].Items!, 64, valid: "bob", invalid: "bob:1");
        Assert.Equal((1, 1), (sendBody["recipientIds"].MinItems, sendBody["recipientIds"].MaxItems));
        AssertId(sendBody["clientMessageId"], 128, valid: "3f1c7a52-0001:a.b_c", invalid: "3f1c/7a52");
        Assert.Equal((1, 65_535), (sendBody["message"].MinLength, sendBody["message"].MaxLength));
        AssertId(Parameter(thread, "conversationId"), 200, valid: "dm~alice~bob", invalid: "dm/alice");
        AssertId(Parameter(conversations, "userId"), 64, valid: "alice", invalid: "al ice");

        AssertRange(Parameter(conversations, "offset"), minimum: "0", maximum: null, defaultValue: 0);
        AssertRange(Parameter(conversations, "count"), minimum: "1", maximum: "100", defaultValue: 20);
        AssertRange(Parameter(conversations, "lastUpdatedTimestamp"), minimum: null, maximum: null, defaultValue: 0);
        AssertRange(Parameter(thread, "offset"), minimum: "0", maximum: null, defaultValue: 0);
        AssertRange(Parameter(thread, "count"), minimum: "1", maximum: "200", defaultValue: 50);
        AssertRange(Parameter(thread, "beforeSeq"), minimum: "0", maximum: null, defaultValue: null);
        AssertRange(Parameter(thread, "afterSeq"), minimum: "0", maximum: null, defaultValue: null);
    }

    /// <summary>Checks every route of the contract, and names every disagreement in the failure, one a line.</summary>
    private async Task AssertEveryRouteAgrees(Func<Route, OpenApiOperation, IEnumerable<string>> check)
    {
        var document = await DocumentAsync();
        var disagreements = Contract
            .SelectMany(route => check(route, Operation(document, route)).Select(what => $"{route.Method} {route.Path}: {what}"))
            .ToList();
        Assert.True(disagreements.Count == 0, string.Join(Environment.NewLine, disagreements));
    }

    private async Task<OpenApiDocument> DocumentAsync()
    {
        var text = await _node.Anonymous.GetStringAsync("/openapi/v1.json", Ct);
        return OpenApiDocument.Parse(text, "json", new OpenApiReaderSettings()).Document
            ?? throw new InvalidOperationException("the served document does not parse");
    }

    private static OpenApiOperation Operation(OpenApiDocument document, Route route)
    {
        Assert.True(document.Paths.TryGetValue(route.Path, out var path), $"{route.Path} is not described");
        var operation = path.Operations?.GetValueOrDefault(new HttpMethod(route.Method));
        Assert.True(operation is not null, $"{route.Method} {route.Path} is not described");
        return operation;
    }

    private static IOpenApiSchema Parameter(OpenApiOperation operation, string name) =>
        Assert.Single(operation.Parameters ?? [], parameter => parameter.Name == name).Schema!;

    /// <summary>The object schema that owns <paramref name="field"/> (<c>a[].b</c>: b in the items of a) and the field's name.</summary>
    private static (IOpenApiSchema? Owner, string Name) Owner(IOpenApiSchema? schema, string field)
    {
        var steps = field.Split("[].");
        for (var i = 0; i < steps.Length - 1; i++)
            schema = schema?.Properties is { } properties && properties.TryGetValue(steps[i], out var property) ? property.Items : null;
        return (schema, steps[^1]);
    }

    private static string[] Enum(IOpenApiSchema schema) => [.. schema.Enum?.Select(value => value!.GetValue<string>()) ?? []];

    private static void AssertId(IOpenApiSchema schema, int maxLength, string valid, string invalid)
    {
        Assert.Equal((1, maxLength), (schema.MinLength, schema.MaxLength));
        Assert.NotNull(schema.Pattern);
        Assert.Matches(schema.Pattern, valid);
        Assert.DoesNotMatch(schema.Pattern, invalid);
    }

    private static void AssertRange(IOpenApiSchema schema, string? minimum, string? maximum, long? defaultValue)
    {
        Assert.Equal(JsonSchemaType.Integer, schema.Type);
        Assert.Equal(minimum, schema.Minimum);
        if (maximum is not null)
            Assert.Equal(maximum, schema.Maximum);
        Assert.Equal(defaultValue, schema.Default?.GetValue<long>());
    }
}
