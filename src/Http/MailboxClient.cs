using Akka.Actor;
using Akka.Hosting;
using Messaging.Actors;
using Messaging.Messages;

namespace Messaging.Http;

/// <summary>
/// The HTTP edge's only way into the cluster: an ask of the mailbox shard region with a deadline. A timeout or a
/// cancelled request comes back as <see cref="MailboxUnavailable"/>, so no cluster trouble ever becomes a 500.
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
            return new MailboxUnavailable($"the mailbox did not answer within {options.AskTimeout.TotalSeconds:0.###} s");
        }
        catch (OperationCanceledException)
        {
            return new MailboxUnavailable("the request was cancelled before the mailbox answered");
        }
    }
}
