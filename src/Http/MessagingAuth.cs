using System.Security.Claims;
using Messaging.Messages;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Messaging.Http;

/// <summary>JWT bearer tokens: HS256, issuer and audience <c>messaging</c>, <c>sub</c> = user id, <c>exp</c> required.</summary>
public static class MessagingAuth
{
    public const string Issuer = "messaging";
    public const string Audience = "messaging";
    public const int MinimumKeyBytes = 32;
    private static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);

    public static IServiceCollection AddMessagingAuthentication(this IServiceCollection services, byte[] signingKey)
    {
        services
            .AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(jwt =>
            {
                jwt.MapInboundClaims = false; // keep "sub" as "sub"
                jwt.TokenValidationParameters = ValidationParameters(signingKey);
                jwt.TokenHandlers.Clear();
                jwt.TokenHandlers.Add(new CachingTokenHandler(ClockSkew));
                jwt.Events = new JwtBearerEvents
                {
                    // Browsers' EventSource cannot set headers: the live events route (only) takes ?access_token=.
                    OnMessageReceived = context =>
                    {
                        var http = context.HttpContext;
                        if (context.Token is null
                            && !http.Request.Headers.ContainsKey("Authorization")
                            && http.GetEndpoint()?.Metadata.GetMetadata<LiveEventsRoute>() is not null
                            && http.Request.Query.TryGetValue(LiveEvents.AccessTokenParameter, out var token)
                            && token.Count == 1)
                            context.Token = token[0];
                        return Task.CompletedTask;
                    },
                    OnTokenValidated = context =>
                    {
                        if (!Ids.IsValidUserId(context.Principal?.FindFirstValue(JwtRegisteredClaimNames.Sub)))
                            context.Fail("the token's sub is not a valid user id");
                        return Task.CompletedTask;
                    },
                    OnChallenge = async context =>
                    {
                        context.HandleResponse();
                        var http = context.HttpContext;
                        http.Response.Headers.WWWAuthenticate = context.AuthenticateFailure is null
                            ? "Bearer"
                            : "Bearer error=\"invalid_token\"";
                        var detail = context.AuthenticateFailure is null
                            ? "a bearer token is required"
                            : "the bearer token is not valid (signature, expiry, issuer or audience)";
                        await Problems.Of(StatusCodes.Status401Unauthorized, detail, SendStatus.For(http, SendStatus.Unauthorized))
                            .ExecuteAsync(http);
                    },
                };
            });
        services.AddAuthorization();
        return services;
    }

    public static TokenValidationParameters ValidationParameters(byte[] signingKey) => new()
    {
        ValidIssuer = Issuer,
        ValidAudience = Audience,
        IssuerSigningKey = new SymmetricSecurityKey(signingKey),
        ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
        ValidateIssuer = true,
        ValidateAudience = true,
        ValidateIssuerSigningKey = true,
        ValidateLifetime = true,
        RequireExpirationTime = true,
        RequireSignedTokens = true,
        ClockSkew = ClockSkew,
    };

    /// <summary>The user a request acts for: the token's <c>sub</c>.</summary>
    public static string UserId(this ClaimsPrincipal principal) =>
        principal.FindFirstValue(JwtRegisteredClaimNames.Sub)
        ?? throw new InvalidOperationException("an authenticated request without a sub claim");
}

/// <summary>Mints the tokens the node accepts (the <c>token</c> command and tests use it).</summary>
public sealed class TokenIssuer(byte[] signingKey, TimeSpan lifetime, TimeProvider? clock = null)
{
    private readonly JsonWebTokenHandler _handler = new();
    private readonly SigningCredentials _credentials = new(new SymmetricSecurityKey(signingKey), SecurityAlgorithms.HmacSha256);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;

    public string Issue(string userId)
    {
        if (!Ids.IsValidUserId(userId))
            throw new ArgumentException($"'{userId}' is not a valid user id ({Ids.UserIdRule})", nameof(userId));
        var now = _clock.GetUtcNow().UtcDateTime;
        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = MessagingAuth.Issuer,
            Audience = MessagingAuth.Audience,
            Claims = new Dictionary<string, object> { [JwtRegisteredClaimNames.Sub] = userId },
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            SigningCredentials = _credentials,
        });
    }
}
