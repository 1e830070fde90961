using Akka.Actor;
using Akka.Hosting;
using Messaging.Actors;
using Messaging.Messages;

namespace Messaging.Http;

/// <summary>
/// The HTTP edge's only way into the cluster: an ask of the mailbox shard region with a deadline. A timeout or a
/// cancelled request comes back as <see cref="EdgeUnavailable"/>, so no cluster trouble ever becomes a 500.
/// </summary>
public sealed class MailboxClient(IRequiredActor<MailboxRegion> region, MessagingApiOptions options)
{
    public async Task<object> AskAsync(IMailboxCommand command, CancellationToken cancellationToken)
    {
        try
        {
            var mailboxes = await region.GetAsync(cancellationToken);
            return await mailboxes.Ask<object>(command, options.AskTimeout, cancellationToken);
        }
        catch (AskTimeoutException)
        {
            return new EdgeUnavailable(UnavailableReason.AskTimeout,
                $"the mailbox did not answer within {options.AskTimeout.TotalSeconds:0.###} s");
        }
        catch (OperationCanceledException)
        {
            return new EdgeUnavailable(UnavailableReason.Cancelled, "the request was cancelled before the mailbox answered");
        }
    }
}

/// <summary>The edge gave up on the mailbox (timeout, cancelled request); <see cref="Reason"/> tags the 503 metric.</summary>
public sealed record EdgeUnavailable(string Reason, string Detail);
