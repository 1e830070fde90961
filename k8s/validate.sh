#!/usr/bin/env bash
# Validates Kubernetes manifests against the Kubernetes schemas (npm kubernetes-models) and this project's
# deployment rules. Usage: k8s/validate.sh [file-or-directory ...]   (default: k8s/)
# The npm packages go to $K8S_VALIDATE_TOOLS (default k8s/.validate, ignored by git), installed once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tools="${K8S_VALIDATE_TOOLS:-$here/.validate}"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "validate.sh: node and npm are needed (apt-get install nodejs npm)" >&2
  exit 2
fi
if [ ! -f "$tools/node_modules/kubernetes-models/package.json" ] || [ ! -f "$tools/node_modules/yaml/package.json" ]; then
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --no-save --silent kubernetes-models@5.1.0 yaml@2.9.1 >&2
fi

if [ "$#" -eq 0 ]; then set -- "$here"; fi
NODE_PATH="$tools/node_modules" exec node "$here/validate.mjs" "$tools/node_modules" "$@"
