using System.Globalization;
using Messaging.Actors.Upgrades;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Messaging.Http;

/// <summary>The sendStatus values of a failed send (API.md, POST /v1/messages failures).</summary>
public static class SendStatus
{
    public const string Invalid = "Invalid";
    public const string Unauthorized = "Unauthorized";
    public const string Forbidden = "Forbidden";
    public const string NotFound = "NotFound";
    public const string Conflict = "Conflict";
    public const string TooLarge = "TooLarge";
    public const string RateLimited = "RateLimited";
    public const string Unavailable = "Unavailable";

    /// <summary>
    /// <paramref name="status"/> when the request is a send (its endpoint carries <see cref="SendRoute"/>), else
    /// null: the one rule for failures answered before or around the handler (bad request, 401, 429, 503).
    /// </summary>
    public static string? For(HttpContext http, string status) =>
        http.GetEndpoint()?.Metadata.GetMetadata<SendRoute>() is null ? null : status;
}

/// <summary>Endpoint metadata of the send route: its failures carry <c>sendStatus</c>, whoever answers them.</summary>
public sealed class SendRoute
{
    public static readonly SendRoute Metadata = new();

    private SendRoute()
    {
    }
}

/// <summary>RFC 9457 problem details for every failure; on the send path they carry <c>sendStatus</c>.</summary>
public static class Problems
{
    public static ProblemHttpResult Of(int status, string detail, string? sendStatus = null)
    {
        var extensions = sendStatus is null
            ? null
            : new Dictionary<string, object?> { ["sendStatus"] = sendStatus };
        return TypedResults.Problem(detail: detail, statusCode: status, title: TitleOf(status), extensions: extensions);
    }

    public static ProblemHttpResult Send(int status, string sendStatus, string detail) => Of(status, detail, sendStatus);

    /// <summary>A mailbox query's failure as the client sees it; a 503 also says when to retry and is counted by reason.</summary>
    public static ProblemHttpResult For(MailboxFailure failure, HttpContext http, MessagingApiOptions options)
    {
        switch (failure)
        {
            case MailboxFailure.Conflict:
                return Of(StatusCodes.Status409Conflict, failure.Detail, SendStatus.For(http, SendStatus.Conflict));
            case MailboxFailure.Invalid:
                return Of(StatusCodes.Status400BadRequest, failure.Detail, SendStatus.For(http, SendStatus.Invalid));
            case MailboxFailure.NotFound:
                return Of(StatusCodes.Status404NotFound, failure.Detail, SendStatus.For(http, SendStatus.NotFound));
            case MailboxFailure.Forbidden:
                return Of(StatusCodes.Status403Forbidden, failure.Detail, SendStatus.For(http, SendStatus.Forbidden));
            case MailboxFailure.RateLimited limited:
                HttpMetrics.RecordRateLimited();
                var seconds = Math.Max(1, (long)Math.Ceiling(limited.RetryAfter.TotalSeconds));
                http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                return Of(StatusCodes.Status429TooManyRequests, $"{failure.Detail} (after {seconds} s)",
                    SendStatus.For(http, SendStatus.RateLimited));
            case MailboxFailure.Unavailable unavailable:
                HttpMetrics.RecordUnavailable(unavailable.Reason);
                http.Response.Headers.RetryAfter = options.UnavailableRetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                return Of(StatusCodes.Status503ServiceUnavailable, $"the cluster cannot answer now: {failure.Detail}",
                    SendStatus.For(http, SendStatus.Unavailable));
            default:
                throw new ArgumentOutOfRangeException(nameof(failure), failure, "a mailbox failure without a problem");
        }
    }

    /// <summary>
    /// How long a client refused by a feature that is off is told to wait: a rolling update takes minutes, so asking
    /// again every second would only add load.
    /// </summary>
    public const int FeatureOffRetryAfterSeconds = 30;

    /// <summary>503 for a feature the cluster cannot use yet (a node of an older release is a member, or the operator switched it off).</summary>
    public static ProblemHttpResult FeatureOff(FeatureState state, HttpContext http)
    {
        HttpMetrics.RecordUnavailable(UnavailableReason.FeatureOff);
        http.Response.Headers.RetryAfter = FeatureOffRetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        return Of(StatusCodes.Status503ServiceUnavailable, $"not available during this upgrade, nothing was stored: {state.Reason}",
            SendStatus.For(http, SendStatus.Unavailable));
    }

    public static string TitleOf(int status) => status switch
    {
        StatusCodes.Status400BadRequest => "Invalid request",
        StatusCodes.Status401Unauthorized => "Unauthorized",
        StatusCodes.Status403Forbidden => "Forbidden",
        StatusCodes.Status404NotFound => "Not found",
        StatusCodes.Status409Conflict => "Conflict",
        StatusCodes.Status413PayloadTooLarge => "Too large",
        StatusCodes.Status429TooManyRequests => "Rate limited",
        StatusCodes.Status503ServiceUnavailable => "Unavailable",
        _ => "Error",
    };
}
