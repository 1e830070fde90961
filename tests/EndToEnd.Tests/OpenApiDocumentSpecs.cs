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
    private const string Json = "application/json";
    private const string EventStream = "text/event-stream";

    /// <param name="RequiredResponse">Required fields of the 200 body; <c>a[].b</c> is field b of a's items.</param>
    private sealed record Route(
        string Method, string Path, string? OperationId, int[] Statuses, bool Secured,
        string[] RequiredRequest, string[] OptionalRequest, string[] RequiredResponse)
    {
        /// <summary>The media types of the success answer's body (its lowest 2xx status); none: no body; null: API.md does not say.</summary>
        public string[]? SuccessBody { get; init; } = [Json];

        /// <summary>The token may also come as the query parameter <c>access_token</c> instead of the header.</summary>
        public bool TokenInQuery { get; init; }
    }

    // Every field API.md gives a conversation object (v1, and the v1.1 fields for receipts and unread).
    private static readonly string[] ConversationFields =
        ["conversationId", "participantIds", "snippet", "lastUpdatedTimestamp", "kind", "name", "lastSeq", "readUpToSeq", "unreadCount", "receipts"];

    // Every field API.md gives a group.
    private static readonly string[] GroupFields = ["conversationId", "name", "participantIds", "admins"];

    // API.md: v1, the v1.1 routes (receipts and unread, typing, live events, groups) and "Health and description".
    private static readonly Route[] Contract =
    [
        new("POST", "/v1/messages", "sendMessage", [200, 400, 401, 403, 404, 409, 413, 429, 503], Secured: true,
            RequiredRequest: ["message", "clientMessageId"], OptionalRequest: ["senderId", "recipientIds", "conversationId"],
            RequiredResponse: ["sendStatus", "messageId", "conversationId", "serverTimestamp"]),
        new("GET", "/v1/users/{userId}/conversations", "fetchConversation", [200, 400, 401, 403, 429, 503], Secured: true,
            RequiredRequest: [], OptionalRequest: [],
            RequiredResponse: ["conversations", "isDBupdate", .. ConversationFields.Select(field => "conversations[]." + field)]),
        new("GET", "/v1/users/{userId}/conversations/{conversationId}/messages", OperationId: null,
            [200, 400, 401, 403, 404, 429, 503], Secured: true,
            RequiredRequest: [], OptionalRequest: [],
            RequiredResponse:
            [
                "messages", "messages[].messageId", "messages[].conversationId", "messages[].seq", "messages[].senderId",
                "messages[].recipientIds", "messages[].message", "messages[].serverTimestamp",
            ]),
        new("POST", "/v1/groups", "createGroup", [200, 201, 400, 401, 429, 503], Secured: true,
            RequiredRequest: ["name", "memberIds", "clientRequestId"], OptionalRequest: [], RequiredResponse: GroupFields),
        new("GET", "/v1/groups/{conversationId}", "getGroup", [200, 400, 401, 403, 404, 503], Secured: true,
            RequiredRequest: [], OptionalRequest: [], RequiredResponse: GroupFields),
        new("POST", "/v1/groups/{conversationId}/members", "changeGroupMembers", [200, 400, 401, 403, 404, 503], Secured: true,
            RequiredRequest: [], OptionalRequest: ["add", "remove"], RequiredResponse: GroupFields),
        new("POST", "/v1/groups/{conversationId}/leave", "leaveGroup", [200, 400, 401, 403, 404, 503], Secured: true,
            RequiredRequest: [], OptionalRequest: [], RequiredResponse: GroupFields),
        new("POST", "/v1/users/{userId}/conversations/{conversationId}/receipts", "postReceipts",
            [200, 400, 401, 403, 404, 503], Secured: true,
            RequiredRequest: [], OptionalRequest: ["deliveredUpToSeq", "readUpToSeq"],
            RequiredResponse: ConversationFields),
        new("POST", "/v1/users/{userId}/conversations/{conversationId}/typing", "postTyping",
            [204, 400, 401, 403, 404, 429, 503], Secured: true,
            RequiredRequest: [], OptionalRequest: [], RequiredResponse: []) { SuccessBody = [] },
        new("GET", "/v1/users/{userId}/events", "getEvents", [200, 400, 401, 403, 429, 503], Secured: true,
            RequiredRequest: [], OptionalRequest: [], RequiredResponse: []) { SuccessBody = [EventStream], TokenInQuery = true },
        new("GET", "/healthz/live", null, [200], Secured: false, [], [], []) { SuccessBody = null },
        new("GET", "/healthz/ready", null, [200, 503], Secured: false, [], [], []) { SuccessBody = null },
        new("GET", "/openapi/v1.json", null, [200], Secured: false, [], [], []),
    ];

    private static readonly string[] SendFailureStatuses = ["Invalid", "Unauthorized", "Forbidden", "NotFound", "Conflict", "TooLarge", "RateLimited", "Unavailable"];
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

    [Fact]
    public Task Should_answer_each_route_with_the_body_of_the_contract() =>
        AssertEveryRouteAgrees(SuccessBody);

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

    /// <summary>
    /// The ways in, each requirement one alternative: the Bearer scheme (its id and form are checked above), and on the
    /// live events route also an apiKey in the query named access_token. A requirement naming two schemes would need both.
    /// </summary>
    private static IEnumerable<string> Security(Route route, OpenApiOperation operation)
    {
        var ways = operation.Security?
            .Select(requirement => string.Join(" and ", requirement.Keys.Select(Way).Order(StringComparer.Ordinal)))
            .ToArray() ?? [];
        string[] expected = !route.Secured ? [] : route.TokenInQuery ? [Bearer, "query access_token"] : [Bearer];
        if (!ways.SequenceEqual(expected))
            yield return $"security [{string.Join(" | ", ways)}], contract [{string.Join(" | ", expected)}]";
    }

    private static string Way(OpenApiSecuritySchemeReference scheme) => scheme switch
    {
        { Reference.Id: Bearer } => Bearer,
        { Type: SecuritySchemeType.ApiKey, In: ParameterLocation.Query } => $"query {scheme.Name}",
        _ => $"{scheme.Reference.Id} ({scheme.Type} in {scheme.In})",
    };

    private static IEnumerable<string> Examples(Route route, OpenApiOperation operation)
    {
        if (!route.Secured)
            yield break;
        foreach (var (type, media) in operation.RequestBody?.Content ?? new Dictionary<string, OpenApiMediaType>())
        {
            if (media is { Example: null, Examples: null or { Count: 0 } })
                yield return $"no {type} request example";
        }
        var (status, success) = Success(operation);
        foreach (var (type, media) in success?.Content ?? new Dictionary<string, OpenApiMediaType>())
        {
            if (media is { Example: null, Examples: null or { Count: 0 } })
                yield return $"no {status} {type} example";
        }
    }

    private static IEnumerable<string> SuccessBody(Route route, OpenApiOperation operation)
    {
        if (route.SuccessBody is null)
            yield break;
        var (status, success) = Success(operation);
        var types = success?.Content?.Keys.Order(StringComparer.Ordinal).ToArray() ?? [];
        if (!types.SequenceEqual(route.SuccessBody.Order(StringComparer.Ordinal)))
            yield return $"{status} body [{string.Join(", ", types)}], contract [{string.Join(", ", route.SuccessBody)}]";
    }

    /// <summary>The success answer: the operation's lowest 2xx response.</summary>
    private static (string? Status, IOpenApiResponse? Response) Success(OpenApiOperation operation) =>
        operation.Responses?.Where(response => response.Key.StartsWith('2')).OrderBy(response => response.Key, StringComparer.Ordinal)
            .Select(response => ((string?)response.Key, (IOpenApiResponse?)response.Value)).FirstOrDefault() ?? (null, null);

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
    public async Task Should_describe_the_v1_1_conversation_and_thread_fields_as_the_contract_does()
    {
        var document = await DocumentAsync();
        var listed = Operation(document, At("GET", "/v1/users/{userId}/conversations")).Responses!["200"].Content![Json]
            .Schema!.Properties!["conversations"].Items!;
        var receipted = Operation(document, At("POST", "/v1/users/{userId}/conversations/{conversationId}/receipts"))
            .Responses!["200"].Content![Json].Schema!;
        var message = Operation(document, At("GET", "/v1/users/{userId}/conversations/{conversationId}/messages"))
            .Responses!["200"].Content![Json].Schema!.Properties!["messages"].Items!;

        foreach (var conversation in new[] { listed, receipted })
        {
            var fields = conversation.Properties!;
            Assert.Equal(new[] { "direct", "group" }, Enum(fields["kind"]).Order(StringComparer.Ordinal));
            // Required (the route tables), and null for direct conversations.
            Assert.Equal(JsonSchemaType.String | JsonSchemaType.Null, fields["name"].Type);
            foreach (var name in new[] { "lastSeq", "readUpToSeq", "unreadCount" })
                Assert.Equal(JsonSchemaType.Integer, fields[name].Type);
            Assert.All(ConversationFields.Where(name => name != "name"), name => Assert.False(
                fields[name].Type?.HasFlag(JsonSchemaType.Null) ?? false, $"{name} is nullable"));

            // One entry per other participant, keyed by user id: an object whose every member is a receipt.
            var receipts = fields["receipts"];
            Assert.Equal(JsonSchemaType.Object, receipts.Type);
            Assert.Empty(receipts.Properties ?? new Dictionary<string, IOpenApiSchema>());
            var receipt = receipts.AdditionalProperties;
            Assert.NotNull(receipt);
            Assert.Equal(new[] { "deliveredUpTo", "readUpTo" }, receipt.Required!.Order(StringComparer.Ordinal));
            Assert.All(new[] { "deliveredUpTo", "readUpTo" }, name => Assert.Equal(JsonSchemaType.Integer, receipt.Properties![name].Type));
        }

        // Only on the user's own messages: optional, and sent, delivered or read when present (never null).
        Assert.DoesNotContain("status", message.Required ?? new HashSet<string>());
        var status = message.Properties!["status"];
        Assert.Equal(JsonSchemaType.String, status.Type);
        Assert.Equal(new[] { "delivered", "read", "sent" }, Enum(status).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Should_describe_the_live_events_stream_and_how_to_resume_it()
    {
        var document = await DocumentAsync();
        var events = Operation(document, At("GET", "/v1/users/{userId}/events"));

        // Resuming: Last-Event-ID as a header, or lastEventId in the query; both optional (without, the stream starts live).
        foreach (var (name, where) in new[] { ("Last-Event-ID", ParameterLocation.Header), ("lastEventId", ParameterLocation.Query) })
        {
            var parameter = Assert.Single(events.Parameters ?? [], parameter => parameter.Name == name);
            Assert.Equal(where, parameter.In);
            Assert.False(parameter.Required, $"{name} is required");
            Assert.False(string.IsNullOrWhiteSpace(parameter.Description), $"{name} has no description");
            if (parameter.Schema?.Pattern is { } pattern)
            {
                Assert.Matches(pattern, "1764300000123"); // an id is a conversation's lastUpdatedTimestamp
                Assert.DoesNotMatch(pattern, "abc");
            }
        }

        // The token as access_token: an apiKey in the query, said to be for this route only.
        var query = Assert.Single(document.Components!.SecuritySchemes!.Values,
            scheme => scheme is { Type: SecuritySchemeType.ApiKey, In: ParameterLocation.Query, Name: "access_token" });
        Assert.Contains("/v1/users/{userId}/events", query.Description);

        // The 200 says which events come, and its example is such a stream.
        var ok = events.Responses!["200"];
        foreach (var named in new[] { "event: conversation", "event: typing", ": keep-alive", "Last-Event-ID" })
            Assert.Contains(named, ok.Description);
        var media = ok.Content![EventStream];
        Assert.Equal(JsonSchemaType.String, media.Schema!.Type);
        var example = media.Example ?? Assert.Single(media.Examples!).Value.Value;
        var seen = SseExample(example!.GetValue<string>());
        Assert.Equal(new[] { "comment", "conversation", "typing" }, seen.Distinct().Order(StringComparer.Ordinal));
    }

    /// <summary>The kinds of the example stream's events, each checked against API.md's shape for it.</summary>
    private static List<string> SseExample(string stream)
    {
        Assert.EndsWith("\n\n", stream);
        var kinds = new List<string>();
        long lastId = 0;
        foreach (var block in stream[..^2].Split("\n\n"))
        {
            var lines = block.Split('\n');
            if (lines.All(line => line.StartsWith(':')))
            {
                kinds.Add("comment");
                continue;
            }
            var fields = lines.Select(line => line.Split(": ", 2)).ToDictionary(field => field[0], field => field[1]);
            var data = System.Text.Json.Nodes.JsonNode.Parse(fields["data"])!.AsObject();
            switch (fields["event"])
            {
                case "conversation":
                    var id = long.Parse(fields["id"], System.Globalization.CultureInfo.InvariantCulture);
                    Assert.True(id > lastId, $"id {id} does not increase along the stream");
                    lastId = id;
                    Assert.Equal(id, data["conversation"]!["lastUpdatedTimestamp"]!.GetValue<long>());
                    Assert.All(ConversationFields, field => Assert.True(data["conversation"]!.AsObject().ContainsKey(field), $"no {field}"));
                    Assert.NotNull(data["messages"]!.AsArray());
                    break;
                case "typing":
                    Assert.False(fields.ContainsKey("id"), "a typing event with an id");
                    Assert.Equal(new[] { "conversationId", "until", "userId" }, data.Select(member => member.Key).Order(StringComparer.Ordinal));
                    break;
                default:
                    Assert.Fail($"event {fields["event"]} is not in the contract");
                    break;
            }
            kinds.Add(fields["event"]);
        }
        return kinds;
    }

    [Fact]
    public async Task Should_state_the_constraints_of_the_contract()
    {
        var document = await DocumentAsync();
        var sendBody = Operation(document, Contract[0]).RequestBody!.Content!["application/json"].Schema!.Properties!;
        var conversations = Operation(document, Contract[1]);
        var thread = Operation(document, Contract[2]);
        var receipts = Operation(document, At("POST", "/v1/users/{userId}/conversations/{conversationId}/receipts"));
        var typing = Operation(document, At("POST", "/v1/users/{userId}/conversations/{conversationId}/typing"));
        var events = Operation(document, At("GET", "/v1/users/{userId}/events"));

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

        foreach (var operation in new[] { receipts, typing })
        {
            AssertId(Parameter(operation, "userId"), 64, valid: "alice", invalid: "al ice");
            AssertId(Parameter(operation, "conversationId"), 200, valid: "dm~alice~bob", invalid: "dm/alice");
        }
        AssertId(Parameter(events, "userId"), 64, valid: "alice", invalid: "al ice");
        // deliveredUpToSeq, readUpToSeq or both: seqs of the user's copy.
        var receiptsBody = receipts.RequestBody!.Content![Json].Schema!;
        Assert.Equal(1, receiptsBody.MinProperties);
        AssertRange(receiptsBody.Properties!["deliveredUpToSeq"], minimum: "0", maximum: null, defaultValue: null);
        AssertRange(receiptsBody.Properties!["readUpToSeq"], minimum: "0", maximum: null, defaultValue: null);
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

    private static Route At(string method, string path) => Contract.Single(route => route.Method == method && route.Path == path);

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
