#!/usr/bin/env bash
# Generates the C# client (Kiota, the dotnet local tool in .config/dotnet-tools.json) from the document a node serves.
# Usage: tests/Client.Tests/generate.sh [--out DIR] [URL-or-FILE]
#   no URL or FILE: builds and starts a node (one-node cluster, data in a temp folder) and reads its /openapi/v1.json
#   URL-or-FILE:    a running node's document (http://HOST:PORT/openapi/v1.json) or a saved copy
#   --out DIR:      where openapi.json and Generated/ go (default: this folder, the committed client)
# The document's `servers` entry is dropped first: it is the address the document was read from, and a client is given
# the node's address when it is made.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$here"
if [ "${1:-}" = "--out" ]; then
  out="$(mkdir -p "$2" && cd "$2" && pwd)"
  shift 2
fi
source="${1:-}"
command -v node >/dev/null || { echo "generate.sh: node is needed (apt-get install nodejs)" >&2; exit 2; }

work="$(mktemp -d -t messaging-client-XXXXXX)"
node_pid=""
cleanup() {
  if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$source" ]; then
  port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  dotnet build "$root/src/Node" -v quiet -nologo >&2
  dotnet "$root/src/Node/bin/Debug/net10.0/Messaging.Node.dll" --urls "http://127.0.0.1:$port" \
    --Messaging:DataDirectory="$work/data" --Messaging:Cluster:Hostname=127.0.0.1 --Messaging:Cluster:Port=0 \
    --Messaging:Admin:Port=0 --Logging:LogLevel:Default=Warning >"$work/node.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 120); do
    node -e 'fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
      "http://127.0.0.1:$port/healthz/ready" && break
    kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log" >&2; exit 1; }
    sleep 0.5
  done
  source="http://127.0.0.1:$port/openapi/v1.json"
fi
case "$source" in
  http://* | https://*)
    node -e 'fetch(process.argv[1]).then(async r => { if (!r.ok) throw new Error(`${r.status} from ${r.url}`);
      require("fs").writeFileSync(process.argv[2], await r.text()) })' "$source" "$work/served.json" ;;
  *) cp "$source" "$work/served.json" ;;
esac
node -e 'const fs=require("fs"); const d=JSON.parse(fs.readFileSync(process.argv[1],"utf8")); delete d.servers;
  fs.writeFileSync(process.argv[2], JSON.stringify(d,null,2)+"\n")' "$work/served.json" "$out/openapi.json"

cd "$root"
export KIOTA_OFFLINE_ENABLED=true KIOTA_CLI_TELEMETRY_OPTOUT=true KIOTA_TUTORIAL_ENABLED=false KIOTA_CONSOLE_COLORS_ENABLED=false
dotnet tool restore >&2
# --ll Error: Kiota warns that the document names no server, which is on purpose (see above).
dotnet kiota generate --language CSharp --openapi "$out/openapi.json" --output "$out/Generated" --clean-output \
  --class-name MessagingClient --namespace-name Messaging.Client --exclude-backward-compatible --ll Error >&2
rm -f "$out/Generated/.kiota.log"
echo "generated $out/Generated from $source" >&2
