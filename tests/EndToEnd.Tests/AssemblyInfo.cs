// The suites start PostgreSQL from Debian's packages and kill node processes with signals: Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
