using Xunit;

// Each scenario runs a PostgreSQL and several node processes on 2 cores: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

// Signals, runuser and Debian's PostgreSQL: the harness is for Linux.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
