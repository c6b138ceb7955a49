#!/usr/bin/env bash
# The static checks CI runs (tests/test_checks.py runs the same): ruff, import-linter's
# contracts (the layer diagram of docs/architecture.md) and mypy, on the package laid out
# as installed. Usage: bash tools/check.sh [mypy|imports|ruff]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
tree="${PARTNERCAST_TREE:-${TMPDIR:-/tmp}/partnercast-tree-$(id -u)}"
python "$repo/tools/package_tree.py" "$tree" >/dev/null
what="${1:-all}"
if [[ $what == all || $what == ruff ]]; then (cd "$repo" && ruff check . && ruff format --check . >/dev/null); fi
if [[ $what == all || $what == imports ]]; then
  (cd "$tree" && PYTHONPATH="$tree" lint-imports "$repo/pyproject.toml" --no-cache)
fi
if [[ $what == all || $what == mypy ]]; then
  (cd "$tree" && mypy --config-file "$repo/pyproject.toml" --cache-dir "$tree/.mypy_cache" -p partnercast)
fi
