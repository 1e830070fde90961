using System.Diagnostics;

namespace Messaging.LoadGenerator;

/// <summary>A server started by the benchmark (the node or the baseline), its output in a log file, stopped on dispose.</summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;

    private ServerProcess(string name, Process process, StreamWriter log, string url)
    {
        Name = name;
        _process = process;
        _log = log;
        Url = url;
    }

    public string Name { get; }
    public string Url { get; }
    public int Pid => _process.Id;

    public static async Task<ServerProcess> StartAsync(string name, string url, IEnumerable<string> args,
        IDictionary<string, string> environment, string logFile, string readyPath)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(logFile)!,
        };
        foreach (var arg in args)
            psi.ArgumentList.Add(arg);
        foreach (var (key, value) in environment)
            psi.Environment[key] = value;
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {name}");
        var log = new StreamWriter(logFile) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(name, process, log, url);

        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(90))
        {
            if (process.HasExited)
                throw new InvalidOperationException($"{name} exited with {process.ExitCode} before it was ready; see {logFile}");
            try
            {
                if ((await http.GetAsync(readyPath)).IsSuccessStatusCode)
                    return server;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException) { }
            await Task.Delay(250);
        }
        await server.DisposeAsync();
        throw new TimeoutException($"{name} not ready within 90 s; see {logFile}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        lock (_log)
            _log.Dispose();
    }
}
