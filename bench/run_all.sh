#!/usr/bin/env bash
# Reproduce the figures of docs/benchmarks.md: every bench/*.py script, then the demo with its per-stage times.
# Usage: bash bench/run_all.sh [--no-demo]     (from the repository root; logs go to bench/results/)
# Each script prints its own ratios against a baseline measured in the same run. A failing script is reported
# and the others still run; the exit status is 1 when any failed.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=bench/results
mkdir -p "$OUT"
failed=()
for script in bench/*.py; do
    name=$(basename "$script" .py)
    echo "== $name"
    start=$(date +%s)
    if "$PY" "$script" 2>&1 | tee "$OUT/$name.log"; then
        echo "== $name done in $(( $(date +%s) - start )) s"
    else
        echo "== $name FAILED (see $OUT/$name.log)"
        failed+=("$name")
    fi
done
if [ "${1:-}" != "--no-demo" ]; then
    echo "== demo (fresh workspace under $OUT/demo; per-stage wall times in $OUT/demo/demo_times.json)"
    start=$(date +%s)
    if "$PY" -m labrador.demo --fresh --workspace "$OUT/demo" 2>&1 | tee "$OUT/demo.log"; then
        echo "== demo done in $(( $(date +%s) - start )) s"
    else
        failed+=("demo")
    fi
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "Failed: ${failed[*]}"
    exit 1
fi
