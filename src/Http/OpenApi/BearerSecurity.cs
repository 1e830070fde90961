using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Messaging.Http.OpenApi;

/// <summary>
/// The Bearer JWT scheme of <see cref="MessagingAuth"/>, required by exactly the operations whose endpoints require
/// authorization (every /v1 route), so health and the document itself stay open in the description as they are. The
/// live events route (<see cref="LiveEventsRoute"/>) also takes the same JWT as the query parameter
/// <c>access_token</c>: a second scheme, offered there only, as an alternative to the header.
/// </summary>
internal sealed class BearerSecurity : IOpenApiDocumentTransformer, IOpenApiOperationTransformer
{
    public const string SchemeId = "Bearer";
    public const string QuerySchemeId = "AccessTokenQuery";

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[SchemeId] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "JWT",
            Description = $"A JWT signed with HS256, issuer `{MessagingAuth.Issuer}`, audience `{MessagingAuth.Audience}`, " +
                "`sub` = the user id the request acts for, `exp` required. `dotnet run --project src/Node -- token <userId>` " +
                "mints one with the node's key.",
        };
        document.Components.SecuritySchemes[QuerySchemeId] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Query,
            Name = LiveEvents.AccessTokenParameter,
            Description = $"The same JWT as the query parameter `{LiveEvents.AccessTokenParameter}`, because browsers' " +
                $"EventSource cannot set headers. Accepted on `GET {LiveEvents.Route}` only, and only when the request has " +
                "no `Authorization` header.",
        };
        return Task.CompletedTask;
    }

    public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        if (!metadata.OfType<IAuthorizeData>().Any() || metadata.OfType<IAllowAnonymous>().Any())
            return Task.CompletedTask;

        operation.Security =
        [
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(SchemeId, context.Document)] = [] },
        ];
        if (metadata.OfType<LiveEventsRoute>().Any()) // either one: two requirements, not two schemes in one
            operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(QuerySchemeId, context.Document)] = [] });
        if (operation.Responses?.TryGetValue("401", out var unauthorized) == true && unauthorized is OpenApiResponse response)
        {
            response.Headers ??= new Dictionary<string, IOpenApiHeader>();
            response.Headers["WWW-Authenticate"] = new OpenApiHeader
            {
                Description = "`Bearer` when no token was given, `Bearer error=\"invalid_token\"` when it was refused.",
                Required = true,
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            };
        }
        return Task.CompletedTask;
    }
}
