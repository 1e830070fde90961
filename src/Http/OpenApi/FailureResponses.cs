using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Messaging.Http.OpenApi;

/// <summary>Endpoint metadata: the endpoint answers <paramref name="StatusCode"/> as problem details <paramref name="When"/>.</summary>
/// <param name="SendStatus">The body's <c>sendStatus</c> on the send route, else null.</param>
/// <param name="RetryAfter">A 429 or 503 that carries <c>Retry-After</c> (waiting helps); false for one that does not.</param>
public sealed record FailureResponse(int StatusCode, string When, string? SendStatus = null, bool RetryAfter = true);

public static class FailureResponses
{
    public const string ProblemSchema = "ProblemDetails";
    public const string SendProblemSchema = "SendProblemDetails";

    /// <summary><c>ProducesProblem</c> that also says when, and with which <c>sendStatus</c>, for the document.</summary>
    public static RouteHandlerBuilder ProducesFailure(
        this RouteHandlerBuilder builder, int statusCode, string when, string? sendStatus = null, bool retryAfter = true) =>
        builder.ProducesProblem(statusCode).WithMetadata(new FailureResponse(statusCode, when, sendStatus, retryAfter));

    /// <summary>Every value a failed send's <c>sendStatus</c> can take: the constants of <see cref="Http.SendStatus"/>.</summary>
    public static IReadOnlyList<string> SendStatuses { get; } =
    [
        .. typeof(SendStatus).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(field => field.IsLiteral && field.FieldType == typeof(string))
            .Select(field => (string)field.GetRawConstantValue()!),
    ];
}

/// <summary>
/// Points each failure at the problem details schema it is answered with (with <c>sendStatus</c> on the send route),
/// says when it happens, and declares <c>Retry-After</c> on 429 and 503: every one of those this server answers sets
/// it (<see cref="SendRateLimiting"/>, <see cref="Problems.For"/>), except a failure whose metadata says it does not
/// (the live events route's limit on open streams: waiting does not help, closing one does).
/// </summary>
internal sealed class FailureResponseTransformer : IOpenApiOperationTransformer, IOpenApiDocumentTransformer
{
    public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        foreach (var failure in context.Description.ActionDescriptor.EndpointMetadata.OfType<FailureResponse>())
        {
            if (operation.Responses?.TryGetValue(failure.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture), out var found) != true
                || found is not OpenApiResponse response)
                continue;
            response.Description = failure.SendStatus is null
                ? $"{Problems.TitleOf(failure.StatusCode)}: {failure.When}."
                : $"{Problems.TitleOf(failure.StatusCode)} (`sendStatus` `{failure.SendStatus}`): {failure.When}.";
            var schema = failure.SendStatus is null ? FailureResponses.ProblemSchema : FailureResponses.SendProblemSchema;
            response.Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/problem+json"] = new()
                {
                    Schema = new OpenApiSchemaReference(schema, context.Document),
                    Example = Example(failure),
                },
            };
            if (failure.RetryAfter && failure.StatusCode is StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable)
            {
                response.Headers ??= new Dictionary<string, IOpenApiHeader>();
                response.Headers["Retry-After"] = new OpenApiHeader
                {
                    Description = "Seconds to wait before retrying.",
                    Required = true,
                    Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "0" },
                };
            }
        }
        return Task.CompletedTask;
    }

    private static JsonObject Example(FailureResponse failure)
    {
        var example = new JsonObject
        {
            ["title"] = Problems.TitleOf(failure.StatusCode),
            ["status"] = failure.StatusCode,
            ["detail"] = failure.When,
        };
        if (failure.SendStatus is not null)
            example["sendStatus"] = failure.SendStatus;
        return example;
    }

    /// <summary>The two problem bodies <see cref="Problems.Of"/> writes; they replace the framework's all-optional one.</summary>
    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        document.Components.Schemas[FailureResponses.ProblemSchema] = Problem(sendStatus: false);
        document.Components.Schemas[FailureResponses.SendProblemSchema] = Problem(sendStatus: true);
        return Task.CompletedTask;
    }

    private static OpenApiSchema Problem(bool sendStatus)
    {
        var schema = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = sendStatus
                ? "RFC 9457 problem details of a failed send, with the extension member `sendStatus`."
                : "RFC 9457 problem details.",
            Required = new HashSet<string> { "title", "status", "detail" },
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                ["type"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A URI reference naming the kind of problem." },
                ["title"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A short summary of the kind of problem." },
                ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Description = "The HTTP status code." },
                ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "What is wrong with this request, in the client's terms." },
                ["instance"] = new OpenApiSchema { Type = JsonSchemaType.String },
                ["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The W3C trace id of the request, for support." },
            },
        };
        if (sendStatus)
        {
            schema.Required.Add("sendStatus");
            schema.Properties["sendStatus"] = new OpenApiSchema
            {
                Type = JsonSchemaType.String,
                Enum = [.. FailureResponses.SendStatuses.Select(value => (JsonNode)JsonValue.Create(value))],
                Description = "Why the send failed.",
            };
        }
        return schema;
    }
}
