using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Messaging.Http.OpenApi;

/// <summary>
/// The document's title, and the routes that are not minimal API handlers (so the framework does not see them): the
/// health checks and this document, described as they answer, with an explicitly empty security requirement.
/// </summary>
internal sealed class DocumentDescription : IOpenApiDocumentTransformer
{
    private const string HealthTag = "health";

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Info = new OpenApiInfo
        {
            Title = "Messaging API",
            Version = OpenApiHosting.DocumentName,
            Description = "1:1 messaging: send a message (idempotent per clientMessageId), list a user's conversations " +
                "(with unread counts and receipts), page through a thread, move the delivered / read markers, say that the " +
                "user is typing, and follow a user's mailbox live (Server-Sent Events, resumable with Last-Event-ID). " +
                "Every /v1 route needs a Bearer JWT whose `sub` is the user the request acts for (the live events route " +
                "also takes it as the query parameter `access_token`). " +
                "Errors are RFC 9457 problem details; on the send route they carry `sendStatus`. " +
                "Timestamps are Unix epoch milliseconds assigned by the server.",
        };

        // The framework writes the base address with a trailing slash, which joins to paths as "//v1/...".
        foreach (var server in document.Servers ?? [])
            server.Url = server.Url?.TrimEnd('/');

        document.Tags ??= new HashSet<OpenApiTag>();
        foreach (var tag in document.Tags.Where(tag => tag.Name == MessagingApi.Tag))
            tag.Description = "Send messages, read conversations, receipts, typing and live events; every route needs a Bearer JWT.";
        document.Tags.Add(new OpenApiTag { Name = HealthTag, Description = "Probes for orchestrators, and this document." });
        document.Paths ??= [];
        document.Paths[MessagingHealth.LivePath] = HealthCheck(document, "getLiveness",
            "The process answers (no check runs): always 200 `Healthy`.", ready: false);
        document.Paths[MessagingHealth.ReadyPath] = HealthCheck(document, "getReadiness",
            "The node is an Up cluster member and its journal answers a read: 200 `Healthy`, else 503 `Unhealthy`.", ready: true);
        document.Paths[OpenApiHosting.DocumentPath] = new OpenApiPathItem
        {
            Operations = new()
            {
                [HttpMethod.Get] = new OpenApiOperation
                {
                    OperationId = "getOpenApiDocument",
                    Security = [],
                    Summary = "This OpenAPI document",
                    Tags = new HashSet<OpenApiTagReference> { new(HealthTag, document) },
                    Responses = new OpenApiResponses
                    {
                        ["200"] = new OpenApiResponse
                        {
                            Description = "The OpenAPI document of the routes above.",
                            Content = new Dictionary<string, OpenApiMediaType>
                            {
                                ["application/json"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.Object } },
                            },
                        },
                    },
                },
            },
        };
        return Task.CompletedTask;
    }

    private static OpenApiPathItem HealthCheck(OpenApiDocument document, string operationId, string summary, bool ready)
    {
        var responses = new OpenApiResponses { ["200"] = PlainText("Healthy.", "Healthy") };
        if (ready)
            responses["503"] = PlainText("Not ready: not (yet) an Up cluster member, or the journal does not answer.", "Unhealthy");
        return new OpenApiPathItem
        {
            Operations = new()
            {
                [HttpMethod.Get] = new OpenApiOperation
                {
                    OperationId = operationId,
                    Security = [],
                    Summary = summary,
                    Tags = new HashSet<OpenApiTagReference> { new(HealthTag, document) },
                    Responses = responses,
                },
            },
        };
    }

    private static OpenApiResponse PlainText(string description, string body) => new()
    {
        Description = description,
        Content = new Dictionary<string, OpenApiMediaType>
        {
            ["text/plain"] = new()
            {
                Schema = new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create(body)] },
                Example = JsonValue.Create(body),
            },
        },
    };
}
