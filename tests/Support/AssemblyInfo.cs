// PostgreSQL from Debian's packages, POSIX signals and file modes: these helpers run on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
