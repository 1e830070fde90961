#!/bin/bash
# A CPU profile of the node under a closed-loop send load, aggregated by part of a send (docs/benchmarks.md,
# "What a send costs, part by part"). Needs perf (linux-perf) and root or perf_event_paranoid <= 1; python3.
#   tests/LoadGenerator/Profiling/profile.sh [USERS] [SECONDS]     (default 2000 users, 40 s of samples)
# Starts `bench --hold` (throwaway PostgreSQL, node, baseline) with a perf map for the JIT's code, primes USERS
# mailboxes with one load, then samples the node at 499 Hz during a second one, and prints the table.
set -euo pipefail
USERS=${1:-2000}; SECONDS_=${2:-40}
REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
OUT=${OUT:-$(mktemp -d /tmp/messaging-profile-XXXX)}; mkdir -p "$OUT"
cd "$REPO"
mkfifo "$OUT/stdin"
# ReadyToRun off and W^X off so that perf can name every managed frame from /tmp/perf-PID.map.
dotnet run -c Release --project tests/LoadGenerator -- bench --hold \
  --node-env "DOTNET_PerfMapEnabled=1;DOTNET_EnableWriteXorExecute=0;DOTNET_ReadyToRun=0" < "$OUT/stdin" > "$OUT/hold.log" 2>&1 &
HOLD=$!
exec 3> "$OUT/stdin"
until grep -q "press Enter" "$OUT/hold.log"; do kill -0 $HOLD 2> /dev/null || { cat "$OUT/hold.log"; exit 1; }; sleep 2; done
line=$(grep -o 'node http.*' "$OUT/hold.log")
URL=$(echo "$line" | cut -d' ' -f2); PID=$(echo "$line" | grep -o 'pid [0-9]*' | head -1 | cut -d' ' -f2)
KEY=$(echo "$line" | grep -o 'key .*' | cut -d' ' -f2)
load() { dotnet run -c Release --no-build --project tests/LoadGenerator -- load --url "$URL" --key "$KEY" --pid "$PID" \
  --users "$USERS" --concurrency 64 --retry 0.05 --warmup 10 --duration "$1" --json "$OUT/$2.json"; }
load 60 prime > "$OUT/prime.log" 2>&1      # mailboxes live, code at tier 1
load $((SECONDS_ + 20)) measured > "$OUT/measured.log" 2>&1 &
LOAD=$!
until grep -q measure "$OUT/measured.log"; do sleep 2; done
perf record -F 499 -g -p "$PID" -o "$OUT/perf.data" -- sleep "$SECONDS_" > /dev/null 2>&1
wait $LOAD
perf script -i "$OUT/perf.data" 2> /dev/null > "$OUT/perf.txt"
exec 3>&-
wait $HOLD || true
tail -n 3 "$OUT/measured.log"
python3 "$REPO/tests/LoadGenerator/Profiling/parts.py" "$OUT/perf.txt" -v | tee "$OUT/parts.txt"
echo "files in $OUT"
