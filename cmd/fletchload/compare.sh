#!/usr/bin/env bash
# The native query beside the Flight SQL statement floor, one run after the
# other in one session (the machine is shared: compare within a run):
#
#   1. the floor tool's minimal gateway (floor flightserver --features 50),
#      loaded by the floor tool's own `flight` mode
#   2. the same gateway loaded by fletchload sql (checks this tool against
#      the floor's: the two p50s should agree within noise)
#   3. fletch demo, the item query as a Flight SQL statement (fletchload sql)
#   4. fletch demo, the same query as a native DoExchange (fletchload native)
#   5. the same two through Python (clients/python/bench_single.py: ADBC
#      statement, FletchClient native)
#
# fletch's query reads item.genre_from_llm, max_staleness infinity: served
# from the in-memory online store once --prewarm has asked every item.
#
#   cmd/fletchload/compare.sh   # RATE=250 DURATION=10s QUIET=0.5 QUIET_WAIT=30s
#
# QUIET: fletchload waits for the rest of the machine to use fewer cores
# than this before a run, and repeats a run it disturbed more (0: off).
#
# Everything lands in .cache/native-bench/ (binaries, demo data, logs, the
# JSON lines in <time>.jsonl). Servers started here are stopped by pid.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
RATE=${RATE:-250}
DURATION=${DURATION:-10s}
QUIET=${QUIET:-0.5}
QUIET_WAIT=${QUIET_WAIT:-30s}
FLOOR_DIR=${FLOOR_DIR:-$root/../shared/tools/floor}
FLOOR_ADDR=127.0.0.1:${FLOOR_PORT:-31338}
FLETCH_ADDR=127.0.0.1:${FLETCH_PORT:-18816}
SQL="SELECT genre_from_llm FROM item WHERE id = '{id}'"

out="$root/.cache/native-bench"
bin="$out/bin"
mkdir -p "$bin"
OUT=${OUT:-$out/$(date -u +%Y%m%dT%H%M%SZ).jsonl}

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

(cd "$FLOOR_DIR" && go build -o "$bin/floor" .)
go build -o "$bin/fletchload" ./cmd/fletchload
GOEXPERIMENT="${GOEXPERIMENT:-simd}" go build -tags duckdb_arrow -o "$bin/fletch" ./cmd/fletch # as ./fletch builds it

wait_for() { # log file, text
	for _ in $(seq 120); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.5; done
	echo "compare.sh: \"$2\" never appeared in $1" >&2
	exit 1
}
load() { "$bin/fletchload" "$@" --rate "$RATE" --duration "$DURATION" --quiet "$QUIET" --quiet-wait "$QUIET_WAIT" | tee -a "$OUT"; }

"$bin/floor" flightserver --listen "$FLOOR_ADDR" --features 50 >"$out/floor.log" 2>&1 &
floor=$!
PIDS+=("$floor")
sleep 1
# the floor tool does not wait for a quiet machine: a noop run that does
"$bin/fletchload" noop --rate 1 --duration 1s --warmup 0 --quiet "$QUIET" --quiet-wait "$QUIET_WAIT" --retries 0 >/dev/null
"$bin/floor" flight --addr "$FLOOR_ADDR" --features 50 --rate "$RATE" --duration "$DURATION" \
	--expect-rows 1 --label floor-gateway/floor-tool --cpu-pids "$floor" | tail -n 1 | tee -a "$OUT"
load sql --addr "$FLOOR_ADDR" --entities 100000 --sql 'SELECT * FROM features WHERE id = {id}' \
	--label floor-gateway/fletchload --cpu-pids "$floor"
kill "$floor"

"$bin/fletch" demo --listen "$FLETCH_ADDR" --dir "$out/demo" >"$out/fletch.log" 2>&1 &
fletch=$!
PIDS+=("$fletch")
wait_for "$out/fletch.log" "serving"
load sql --addr "$FLETCH_ADDR" --entities 500 --prewarm --sql "$SQL" --label fletch/statement --cpu-pids "$fletch"
load native --addr "$FLETCH_ADDR" --entities 500 --prewarm --class item --out genre_from_llm \
	--label fletch/native --cpu-pids "$fletch"
if [[ -x .venv/bin/python ]]; then
	.venv/bin/python clients/python/bench_single.py "grpc://$FLETCH_ADDR" --rate "$RATE" \
		--duration "${DURATION%s}" --entities 500 | tee -a "$OUT"
fi
echo "compare.sh: results in $OUT" >&2
