using Messaging.Node;
using Messaging.Node.Admin;

try
{
    if (args is ["token", .. var tokenArgs])
        return TokenCommand.Run(tokenArgs, Console.Out, Console.Error);
    if (args is ["admin", .. var adminArgs])
        return await AdminCommand.RunAsync(adminArgs, Console.Out, Console.Error);

    await NodeApp.Build(args).RunAsync();
    return 0;
}
catch (NodeConfigurationException ex)
{
    Console.Error.WriteLine(ex.Message);
    return 2;
}
