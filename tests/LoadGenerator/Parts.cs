namespace Messaging.LoadGenerator;

public static class Parts
{
    public static Task<int> RunAsync(Args a)
    {
        a.RejectUnknown();
        return Task.FromResult(0);
    }
}
