#!/usr/bin/env bash
# Lints an OpenAPI document with Redocly CLI (npm @redocly/cli) and the rules in redocly.yaml beside this script.
# Usage: tests/OpenApi/lint.sh DOCUMENT.json   (a node serves its document at /openapi/v1.json)
# Exit 0: no errors (warnings are printed); 1: errors. The npm package goes to $OPENAPI_LINT_TOOLS (default
# tests/OpenApi/.lint, ignored by git), installed once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tools="${OPENAPI_LINT_TOOLS:-$here/.lint}"
version=2.77.0

if [ "$#" -ne 1 ]; then
  echo "usage: $0 DOCUMENT.json" >&2
  exit 2
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "lint.sh: node and npm are needed (apt-get install nodejs npm)" >&2
  exit 2
fi
if [ "$(node -p "require('$tools/node_modules/@redocly/cli/package.json').version" 2>/dev/null)" != "$version" ]; then
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --no-save --silent "@redocly/cli@$version" >&2
fi

# No telemetry and no update check: the only network these tests use is the package registry, at install.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_COLOR=1
exec "$tools/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" --format stylish "$1"
