using Messaging.Http;
using Messaging.Messages;

namespace Messaging.Node;

/// <summary><c>token alice bob</c>: one JWT per user id, signed with the key this configuration's node would use.</summary>
public static class TokenCommand
{
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        // --key=value (or --key value) arguments are configuration; the rest are user ids.
        var configArgs = new List<string>();
        var userIds = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
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
            error.WriteLine("usage: token <userId> [<userId> ...]");
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
        foreach (var userId in userIds)
            output.WriteLine(issuer.Issue(userId));
        return 0;
    }
}
