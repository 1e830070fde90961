using Messaging.Http;
using Messaging.Messages;
using Microsoft.AspNetCore.Hosting;

namespace Messaging.Node;

/// <summary>
/// <c>token alice bob</c>: one JWT per user id, signed with the key this configuration's node would use.
/// With <c>--link</c>, one web client link per user instead (<c>http://localhost:8080/#token=...</c>), on the node's
/// public URL: the first of <c>--urls</c> / <c>ASPNETCORE_URLS</c> (a wildcard host such as <c>0.0.0.0</c>, <c>*</c>
/// or <c>+</c> becomes <c>localhost</c>), else <c>http_ports</c> on localhost, else <see cref="NodeApp.DefaultUrl"/>.
/// </summary>
public static class TokenCommand
{
    public const string LinkOption = "--link";

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        // --link is a flag; other --key=value (or --key value) arguments are configuration; the rest are user ids.
        var configArgs = new List<string>();
        var userIds = new List<string>();
        var link = false;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == LinkOption)
            {
                link = true;
            }
            else if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                configArgs.Add(args[i]);
                if (!args[i].Contains('=') && i + 1 < args.Length)
                    configArgs.Add(args[++i]);
            }
            else
            {
                userIds.Add(args[i]);
            }
        }
        if (userIds.Count == 0)
        {
            error.WriteLine("usage: token [--link] <userId> [<userId> ...]");
            return 2;
        }
        if (userIds.FirstOrDefault(id => !Ids.IsValidUserId(id)) is { } bad)
        {
            error.WriteLine($"'{bad}' is not a valid user id ({Ids.UserIdRule})");
            return 2;
        }

        var configuration = NodeApp.CreateBuilder([.. configArgs]).Configuration;
        var settings = NodeSettings.Load(configuration);
        var issuer = new TokenIssuer(SigningKeys.Resolve(settings), settings.Auth.TokenLifetime);
        var baseUrl = link ? PublicUrl(configuration) : null;
        foreach (var userId in userIds)
        {
            var token = issuer.Issue(userId);
            output.WriteLine(baseUrl is null ? token : $"{baseUrl}/#token={token}");
        }
        return 0;
    }

    /// <summary>Where a browser on this machine reaches the node this configuration would start (no trailing slash).</summary>
    public static string PublicUrl(IConfiguration configuration)
    {
        var urls = configuration[WebHostDefaults.ServerUrlsKey];
        if (!string.IsNullOrWhiteSpace(urls))
        {
            var first = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[0];
            var url = System.Text.RegularExpressions.Regex.Replace(
                first, @"^(?<scheme>[A-Za-z]+://)(?<host>\*|\+|0\.0\.0\.0|\[::\])(?=[:/]|$)", "${scheme}localhost");
            return url.TrimEnd('/');
        }
        var ports = configuration[WebHostDefaults.HttpPortsKey];
        if (!string.IsNullOrWhiteSpace(ports))
            return $"http://localhost:{ports.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[0]}";
        return NodeApp.DefaultUrl;
    }
}
