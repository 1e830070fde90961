#!/bin/bash
# A/B of the node's CPU per send, alternating A and B, each on a fresh `bench --hold` (throwaway PostgreSQL, node,
# baseline), primed by one load, then measured by another (closed loop, 64 in flight, sends only).
#   tests/LoadGenerator/Profiling/ab.sh NAME CYCLES "NODE_ENV_A" "NODE_ENV_B"
# NODE_ENV_*: KEY=VALUE;... for the node (bench's --node-env). MESSAGING_NODE_DLL_A / _B: another build of the node
# (e.g. main's, built from `git archive main`). Prints one line per run: sends/s, node cores, node CPU ms per send.
set -uo pipefail
NAME=$1; CYCLES=$2; EA=${3:-}; EB=${4:-}; USERS=${USERS:-2000}
REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
OUT=${OUT:-/tmp/messaging-ab}; mkdir -p "$OUT"
cd "$REPO"
measure() { # HOLD_LOG LABEL SECONDS
  local line URL PID KEY PG
  line=$(grep -o 'node http.*' "$1")
  URL=$(echo "$line" | cut -d' ' -f2); PID=$(echo "$line" | grep -o 'pid [0-9]*' | head -1 | cut -d' ' -f2)
  KEY=$(echo "$line" | grep -o 'key .*' | cut -d' ' -f2); PG=$(echo "$line" | grep -o 'postmaster [0-9]*' | cut -d' ' -f2)
  dotnet run -c Release --no-build --project tests/LoadGenerator -- load --url "$URL" --key "$KEY" --pid "$PID" \
    ${PG:+--postmaster "$PG"} \
    --users "$USERS" --concurrency 64 --retry 0.05 --warmup 10 --duration "$3" --json "$OUT/$2.json" > "$OUT/$2.log" 2>&1
  python3 -c 'import json,sys
r=json.load(open(sys.argv[1])); c=r["CpuCores"]; s=r["SendsPerSecond"]; g=lambda k: c.get(k, 0)
print("sends/s %.0f node cores %.2f node ms/send %.3f postgres ms/send %.3f other cores %.2f" % (s, g("server"), 1000 * g("server") / s, 1000 * g("postgres") / s, g("other")))' "$OUT/$2.json"
}
for c in $(seq 1 "$CYCLES"); do
  for v in A B; do
    if [ $v = A ]; then E=$EA; D=${MESSAGING_NODE_DLL_A:-}; else E=$EB; D=${MESSAGING_NODE_DLL_B:-}; fi
    T=${NAME}_$v$c; F=$OUT/$T.stdin; rm -f "$F"; mkfifo "$F"
    MESSAGING_NODE_DLL=$D dotnet run -c Release --no-build --project tests/LoadGenerator -- bench --hold \
      --node-env "DOTNET_TieredPGO=1;$E" < "$F" > "$OUT/$T.hold" 2>&1 &
    HOLD=$!
    exec 3> "$F"
    until grep -q "press Enter" "$OUT/$T.hold"; do kill -0 $HOLD 2> /dev/null || { cat "$OUT/$T.hold"; exit 1; }; sleep 2; done
    measure "$OUT/$T.hold" "${T}_prime" 25 > /dev/null
    echo "$T [$E] [$D] load $(cut -d' ' -f1-3 /proc/loadavg): $(measure "$OUT/$T.hold" "$T" 30)" | tee -a "$OUT/$NAME.results"
    exec 3>&-
    wait $HOLD
    rm -f "$F"
  done
done
