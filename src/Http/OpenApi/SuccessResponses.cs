using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Messaging.Http.OpenApi;

/// <summary>
/// Endpoint metadata: what the success answer (the operation's 2xx: 200, or 204 without a body) means, and DTO
/// instances shown as the request example and as its examples (named by what they show; a string is shown as it is,
/// for a body that is not JSON).
/// </summary>
public sealed record SuccessResponse(string Description, object? RequestExample, IReadOnlyDictionary<string, object> Examples);

public static class SuccessResponses
{
    public static RouteHandlerBuilder DescribeSuccess(
        this RouteHandlerBuilder builder, string description, object? requestExample, params (string Name, object Response)[] examples) =>
        builder.WithMetadata(new SuccessResponse(
            description, requestExample, examples.ToDictionary(example => example.Name, example => example.Response)));
}

/// <summary>
/// Writes the examples with the API's own serializer, so an example is exactly what the wire carries for that DTO
/// (and a renamed field renames it too).
/// </summary>
internal sealed class SuccessResponseTransformer : IOpenApiOperationTransformer
{
    public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        if (context.Description.ActionDescriptor.EndpointMetadata.OfType<SuccessResponse>().LastOrDefault() is not { } success)
            return Task.CompletedTask;

        if (success.RequestExample is { } request && operation.RequestBody?.Content is { } requestContent)
        {
            foreach (var media in requestContent.Values)
                media.Example = WithoutNulls(Serialize(request));
        }
        var successes = operation.Responses?.Where(response => response.Key.StartsWith('2')).OrderBy(response => response.Key, StringComparer.Ordinal);
        if (successes?.Select(response => response.Value).FirstOrDefault() is OpenApiResponse ok)
        {
            ok.Description = success.Description;
            foreach (var media in ok.Content?.Values ?? [])
            {
                media.Examples = success.Examples.ToDictionary(
                    example => example.Key,
                    example => (IOpenApiExample)new OpenApiExample { Value = Serialize(example.Value) });
            }
        }
        return Task.CompletedTask;
    }

    private static JsonNode? Serialize(object value) =>
        JsonSerializer.SerializeToNode(value, value.GetType(), MessagingJsonContext.Default.Options);

    /// <summary>In a request example, a null member stands for one the client leaves out (the request DTO is all nullable).</summary>
    private static JsonNode? WithoutNulls(JsonNode? node)
    {
        if (node is JsonObject members)
        {
            foreach (var name in members.Where(member => member.Value is null).Select(member => member.Key).ToList())
                members.Remove(name);
        }
        return node;
    }
}
