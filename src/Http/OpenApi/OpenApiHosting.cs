using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Messaging.Http.OpenApi;

/// <summary>
/// The OpenAPI document at /openapi/v1.json, produced from the endpoints, their metadata and the DTOs' attributes by
/// the transformers in this folder.
/// </summary>
public static class OpenApiHosting
{
    public const string DocumentName = "v1";
    public const string DocumentRoute = "/openapi/{documentName}.json";
    public static readonly string DocumentPath = DocumentRoute.Replace("{documentName}", DocumentName, StringComparison.Ordinal);

    public static IServiceCollection AddMessagingOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(DocumentName, options =>
        {
            var security = new BearerSecurity();
            var failures = new FailureResponseTransformer();
            options.AddSchemaTransformer(new ContractSchemaTransformer());
            options.AddOperationTransformer(security);
            options.AddOperationTransformer(failures);
            options.AddOperationTransformer(new SuccessResponseTransformer());
            options.AddDocumentTransformer(security);
            options.AddDocumentTransformer(failures);
            options.AddDocumentTransformer(new DocumentDescription());
        });

    public static IEndpointRouteBuilder MapMessagingOpenApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapOpenApi(DocumentRoute);
        return endpoints;
    }
}
