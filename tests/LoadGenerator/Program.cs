using Messaging.LoadGenerator;
// The benchmark reads /proc and runs PostgreSQL as a Unix user: Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]



// Messaging benchmark: see docs/benchmarks.md.
//   bench            throwaway PostgreSQL + node (Release) + baseline, both loads back to back, table with the ratio
//   load             one load against a running server (--url, --key, optionally --pid)
//   live             throwaway PostgreSQL + node (Release): open SSE streams, memory per stream, ack->event latency at half peak
//   groups           throwaway PostgreSQL + node (Release): group fan-out for groups of 8, 256, 1024 members
//   servers          the journal on 1, then 2 throwaway PostgreSQL servers + node (Release): CPU per send of the node and
//                    each server, rows per server
//   soak             throwaway PostgreSQL + node (Release): half peak with reads and retries for 30 min, users idle in
//                    turns (passivation), a row of rates, errors, latency, memory per interval, then a read-back of
//                    every acknowledged send
//   parts            journal write rate, cold recovery, memory per mailbox, deep thread page (in-process); --only fence:
//                    the writer fence's PostgreSQL CPU per journal event, trigger variants in alternating rounds
//   baseline-server  the plain Npgsql service (started by bench); --floor: the same edge with no database (bench --floor)
try
{
    return args switch
    {
        ["bench", .. var rest] => await Bench.RunAsync(new Args(rest)),
        ["load", .. var rest] => await Bench.LoadAsync(new Args(rest)),
        ["parts", .. var rest] => await Parts.RunAsync(new Args(rest)),
        ["live", .. var rest] => await LiveBench.RunAsync(new Args(rest)),
        ["groups", .. var rest] => await GroupBench.RunAsync(new Args(rest)),
        ["servers", .. var rest] => await ServersBench.RunAsync(new Args(rest)),
        ["soak", .. var rest] => await Soak.RunAsync(new Args(rest)),
        ["baseline-server", .. var rest] => await BaselineServer(new Args(rest)),
        _ => Usage(),
    };
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine(ex.Message);
    return Usage();
}

static async Task<int> BaselineServer(Args a)
{
    var url = a.Str("urls") ?? throw new ArgumentException("--urls is required");
    var floor = a.Flag("floor"); // the edge alone: no database, sends kept in memory (bench --floor)
    var connection = a.Str("connection");
    var key = a.Str("key") ?? throw new ArgumentException("--key is required");
    a.RejectUnknown();
    var keyBytes = System.Text.Encoding.UTF8.GetBytes(key);
    return floor ? await Baseline.RunFloorAsync(url, keyBytes)
        : await Baseline.RunServerAsync(url, connection ?? throw new ArgumentException("--connection is required"), keyBytes);
}

static int Usage()
{
    Console.Error.WriteLine("""
        usage: Messaging.LoadGenerator <command> [options]
          bench  [--users 10000] [--contacts 3] [--retry 0.05] [--read 0.3] [--concurrency 64] [--warmup 10]
                 [--duration 20] [--rounds 3] [--pg-fsync on|off] [--json out.json] [--keep-dir]
                 [--floor (a third load per round: the same HTTP edge with no database, the floor of any server)]
          load   --url http://host:port --key SIGNING_KEY [--pid PID] [--rate OPS_PER_S | --concurrency C]
                 [--users] [--contacts] [--retry] [--read] [--warmup] [--duration] [--label] [--json]
          live   [--streams 10000] [--senders 1000] [--concurrency 64] [--peak 15] [--rounds 3] [--warmup 5]
                 [--duration 20] [--json out.json]
          groups [--sizes 8,256,1024] [--concurrency 16] [--warmup 3] [--duration 15] [--rounds 3] [--json out.json]
          servers [--servers 1,2] [--users 10000] [--contacts 3] [--retry 0.05] [--concurrency 64] [--warmup 10]
                 [--duration 20] [--rounds 3] [--pg-fsync on|off] [--json out.json]
          soak   [--minutes 30] [--interval 60] [--users 10000] [--contacts 3] [--retry 0.05] [--read 0.3]
                 [--rate SENDS_PER_S | --fraction 0.5 --concurrency 64 --peak-warmup 10 --peak-duration 20]
                 [--cohorts 4] [--idle-for SECONDS] [--passivate-after SECONDS] [--warmup-minutes 5] [--prefill SENDS_PER_USER]
                 [--verify-users N (0 = all)] [--timeout 30] [--pg-fsync on|off] [--json out.json] [--keep-dir]
          parts  [--sqlite] [--pg-fsync on|off] [--only journal,recovery,memory,state,deep,wake,cold] [--mailboxes 100000]
                 [--cold-senders 100000 --cold-live-senders 3000 --cold-groups 10000 --cold-group-members 32 (cold)]
                 [--messages 50 --contacts 5 (memory, state, wake)] [--wake-mailboxes 2500 --wake-rounds 3]
                 [--deep-messages 100000] [--journal-seconds 20] [--hocon "akka { ... }"] [--pg-connection-extra ";Key=Value"] [--json out.json]
          parts  --only fence [--fence-variants off,current,fastpath,onequery,empty,empty-tt,scan,v1-locks,v1-check,
                 each also NAME+reset]
                 [--fence-rounds 3]
                 [--fence-actors 1000] [--fence-depth 1 | --fence-rate EVENTS_PER_S] [--fence-warmup 4]
                 [--fence-seconds 12] [--fence-pad-writers 100000] [--pg-fsync on|off]
        """);
    return 2;
}
