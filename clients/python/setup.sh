#!/usr/bin/env bash
# Makes <repo>/.venv with the fletch Python client and its test dependencies.
# Idempotent and fast when done: it reinstalls only when pyproject.toml
# changed since the last successful run. pip's cache lives in <repo>/.cache/pip.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.venv"
stamp="$venv/.fletch-client-stamp"
want="$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
python="${PYTHON:-python3}"
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
export PIP_CACHE_DIR="$repo/.cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install --quiet -e "$here[test]"
echo "$want" >"$stamp"
