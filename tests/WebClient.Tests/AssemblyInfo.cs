// Debian's chromium at /usr/bin/chromium, run as root with --no-sandbox: Linux only, like the other suites.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
