#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, and nothing when it is there already:
#   PostgreSQL's server binaries (the tests start their own throwaway servers from /usr/lib/postgresql/*/bin),
#   Node.js and npm (k8s/validate.sh and the OpenAPI lint install their npm packages themselves),
#   chromium at /usr/bin/chromium (tests/WebClient.Tests drive it through Microsoft.Playwright),
#   nftables (`nft`), for the opt-in partition scenarios (tests/Cluster.Tests/PartitionSpecs.cs; small).
#   libfaketime (tests/Cluster.Tests preload it into a node whose clock runs an hour ahead or behind: ClockSkewSpecs).
# The README's test command runs it first; so does .ci/run, through that command.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || missing+=(postgresql)
{ command -v node > /dev/null && command -v npm > /dev/null; } || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v nft > /dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
compgen -G "/usr/lib/*/faketime/libfaketime.so.1" > /dev/null || missing+=(libfaketime)

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  echo "tests/prepare.sh: installing ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's postinst may start a cluster on 5432; the tests use their own, so stop it if it is running.
if command -v pg_lsclusters > /dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
  (pg_ctlcluster --force "$(pg_lsclusters -h | awk '$4=="online"{print $1; exit}')" main stop || true) 2>/dev/null
fi
