using System.Reflection;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.FileProviders;

namespace Messaging.Node;

/// <summary>
/// The web client (src/Node/WebClient: HTML, ES modules, CSS, embedded in this assembly) served at <c>/</c>.
/// It runs before authentication, so its files need no token; it answers only for files it has, so every other
/// path (<c>/v1</c>, <c>/healthz</c>, <c>/openapi</c>) reaches its endpoint untouched. Every file goes out with a
/// Content-Security-Policy that allows scripts, styles and connections from this origin only (no inline script).
/// </summary>
public static class WebClientHosting
{
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>The embedded files' logical names start with this (see Node.csproj).</summary>
    private const string ResourcePrefix = "webclient";

    public static WebApplication UseWebClient(this WebApplication app)
    {
        var files = new EmbeddedFileProvider(Assembly.GetExecutingAssembly(), ResourcePrefix);
        var types = new FileExtensionContentTypeProvider();
        types.Mappings[".js"] = "text/javascript; charset=utf-8";
        types.Mappings[".css"] = "text/css; charset=utf-8";
        types.Mappings[".html"] = "text/html; charset=utf-8";

        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files, DefaultFileNames = ["index.html"] });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            ContentTypeProvider = types,
            OnPrepareResponse = context =>
            {
                var headers = context.Context.Response.Headers;
                headers.ContentSecurityPolicy = ContentSecurityPolicy;
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "no-referrer";
                // Small files, and a new build must reach open tabs: revalidate every time (ETag makes that cheap).
                headers.CacheControl = "no-cache";
            },
        });
        return app;
    }
}
