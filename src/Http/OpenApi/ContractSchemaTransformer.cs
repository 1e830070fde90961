using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Mvc.Infrastructure;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Messaging.Http.OpenApi;

/// <summary>
/// Says in each schema what the code enforces and the framework cannot see: integers are JSON numbers, ids have their
/// patterns, a string its allowed values, a parameter its default, a member left out when null is not nullable, and an
/// <see cref="EdgeValidatedAttribute"/> body its real required set, its minimum of members and no unknown members.
/// </summary>
internal sealed class ContractSchemaTransformer : IOpenApiSchemaTransformer
{
    public Task TransformAsync(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken cancellationToken)
    {
        NumbersAreNumbers(schema);

        var attributes = AttributesOf(context);
        foreach (var id in attributes.OfType<IdAttribute>())
            DescribeId(schema.Type is { } type && type.HasFlag(JsonSchemaType.Array) ? schema.Items as OpenApiSchema : schema, id);
        // The framework reads [DefaultValue] only when the parameter has no C# default; ours default to null ("not given").
        foreach (var value in attributes.OfType<DefaultValueAttribute>())
            schema.Default = value.Value switch
            {
                int number => JsonValue.Create(number),
                long number => JsonValue.Create(number),
                var other => throw new NotSupportedException($"a [DefaultValue] of {other?.GetType().Name ?? "null"} in the document"),
            };
        foreach (var allowed in attributes.OfType<AllowedValuesAttribute>())
            schema.Enum = [.. allowed.Values.Select(value => (JsonNode)JsonValue.Create(value?.ToString() ?? ""))];

        if (context.JsonPropertyInfo is { DeclaringType: var declaring } && IsEdgeValidated(declaring) && schema.Type is { } nullable)
            schema.Type = nullable & ~JsonSchemaType.Null;
        if (context.JsonPropertyInfo is { } omitted && IsLeftOutWhenNull(omitted) && schema.Type is { } optional)
            schema.Type = optional & ~JsonSchemaType.Null; // never null on the wire: absent instead (and not required)
        if (context.JsonPropertyInfo is null && EdgeValidation(context.JsonTypeInfo.Type) is { } edge)
        {
            schema.AdditionalPropertiesAllowed = false; // unknown members are a 400
            schema.Required = new HashSet<string>(context.JsonTypeInfo.Properties
                .Where(property => property.AttributeProvider?.IsDefined(typeof(RequiredAttribute), inherit: false) == true)
                .Select(property => property.Name));
            if (edge.MinProperties > 0)
                schema.MinProperties = edge.MinProperties;
        }
        return Task.CompletedTask;
    }

    /// <summary>A property the API's serializer leaves out when it is null (<c>[JsonIgnore(WhenWritingNull)]</c>).</summary>
    private static bool IsLeftOutWhenNull(JsonPropertyInfo property) =>
        property.AttributeProvider?.GetCustomAttributes(typeof(JsonIgnoreAttribute), inherit: false)
            .OfType<JsonIgnoreAttribute>()
            .Any(ignore => ignore.Condition is JsonIgnoreCondition.WhenWritingNull or JsonIgnoreCondition.WhenWritingDefault) == true;

    /// <summary>
    /// The web defaults read numbers from strings too, so the framework describes every integer as "integer or numeric
    /// string"; the server always writes numbers and the contract asks for numbers.
    /// </summary>
    private static void NumbersAreNumbers(OpenApiSchema schema)
    {
        if (schema.Type is { } type && type.HasFlag(JsonSchemaType.Integer) && type.HasFlag(JsonSchemaType.String))
        {
            schema.Type = type & ~JsonSchemaType.String;
            schema.Pattern = null;
        }
    }

    private static void DescribeId(OpenApiSchema? schema, IdAttribute id)
    {
        if (schema is null)
            return;
        schema.Pattern = id.Pattern;
        schema.MinLength = 1;
        schema.MaxLength = id.MaxLength;
    }

    private static bool IsEdgeValidated(Type? type) => EdgeValidation(type) is not null;

    private static EdgeValidatedAttribute? EdgeValidation(Type? type) => type?.GetCustomAttribute<EdgeValidatedAttribute>(inherit: false);

    private static Attribute[] AttributesOf(OpenApiSchemaTransformerContext context)
    {
        if (context.JsonPropertyInfo?.AttributeProvider is { } property)
            return [.. property.GetCustomAttributes(inherit: false).OfType<Attribute>()];
        if (context.ParameterDescription?.ParameterDescriptor is IParameterInfoParameterDescriptor { ParameterInfo: { } parameter })
            return [.. parameter.GetCustomAttributes()];
        return [];
    }
}
