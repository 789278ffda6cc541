#!/usr/bin/env bash
# One workload against two `cairn` binaries (say, before and after a change), one `cairn dev` at
# a time so that neither shares the machine with the other: A, B, A, B, … for PAIRS pairs. Each
# run is `cairn-bench s3` with ROUNDS rounds and the dev process's CPU recorded (`--cpu-pid`);
# the JSON of every run goes to $OUT, and the last lines print each run's median throughput and
# server CPU per MB (or per 1,000 operations), then the median over each binary's runs.
#
# Usage: scripts/bench-binaries.sh A_BINARY B_BINARY [cairn-bench s3 workload arguments]
#   e.g. scripts/bench-binaries.sh /tmp/cairn-before target/release/cairn get --size 16MiB \
#        --concurrency 8 --keys 16
# Environment: PAIRS (default 2), ROUNDS (default 5), SECONDS_PER_ROUND (default 5), OUT
# (default /var/tmp/cairn-bench-binaries/results), CAIRN_FLAGS (extra `cairn dev` flags), and
# CARGO_TARGET_DIR for the release `cairn-bench`.
set -euo pipefail
[[ $# -ge 3 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
A_BINARY=$1 B_BINARY=$2
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${CARGO_TARGET_DIR:-$ROOT/target}/release/cairn-bench
[[ -x $BENCH ]] || { echo "build first: cargo build --release -p cairn-bench" >&2; exit 1; }
PAIRS=${PAIRS:-2}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
WORK=/var/tmp/cairn-bench-binaries
OUT=${OUT:-$WORK/results}
mkdir -p "$OUT"
: >"$OUT/binaries.txt"
BASE=19400
DEV_PID=

stop_dev() {
    [[ -n $DEV_PID ]] || return 0
    kill "$DEV_PID" 2>/dev/null || true
    wait "$DEV_PID" 2>/dev/null || true
    DEV_PID=
    rm -rf "$WORK/run"
}
trap stop_dev EXIT

run() {
    local binary=$1 label=$2
    shift 2
    rm -rf "$WORK/run"
    mkdir -p "$WORK/run"
    # shellcheck disable=SC2086 # the flags are words
    "$binary" dev --data "$WORK/run/data" --listen "127.0.0.1:$BASE" \
        --admin-listen "127.0.0.1:$((BASE + 1))" --meta-port $((BASE + 2)) \
        --storage-base-port $((BASE + 10)) ${CAIRN_FLAGS:-} >"$WORK/run/dev.log" 2>&1 &
    DEV_PID=$!
    for _ in $(seq 300); do
        grep -q "secret key:" "$WORK/run/dev.log" && break
        sleep 0.1
    done
    grep -q "secret key:" "$WORK/run/dev.log" || { cat "$WORK/run/dev.log" >&2; exit 1; }
    AWS_ACCESS_KEY_ID=$(awk '/access key:/ {print $3}' "$WORK/run/dev.log") \
        AWS_SECRET_ACCESS_KEY=$(awk '/secret key:/ {print $3}' "$WORK/run/dev.log") \
        "$BENCH" s3 "$@" --endpoint "http://127.0.0.1:$BASE" --bucket cairn-bench-binaries \
        --rounds "$ROUNDS" --seconds "$SECONDS_PER_ROUND" --cpu-pid "$DEV_PID" \
        --quiet --json "$OUT/$label.json" >/dev/null
    echo "$label: $binary" >>"$OUT/binaries.txt"
    stop_dev
}

for pair in $(seq "$PAIRS"); do
    run "$A_BINARY" "A-$pair" "$@"
    run "$B_BINARY" "B-$pair" "$@"
done

python3 - "$OUT" "$PAIRS" <<'EOF'
import json, statistics, sys
out, pairs = sys.argv[1], int(sys.argv[2])
summary = {"A": ([], []), "B": ([], [])}
for pair in range(1, pairs + 1):
    for side in ("A", "B"):
        document = json.load(open(f"{out}/{side}-{pair}.json"))
        rounds = document["workloads"][0]["rounds"]
        operation = next(iter(rounds[0]["by_operation"]))
        ops = [r["by_operation"][operation]["ops_per_second"] for r in rounds]
        # A listing moves no object bytes: it has no CPU per MB (null in the JSON).
        per_mb = [r["cpu"]["server_cpu_ms_per_megabyte"] or 0.0 for r in rounds]
        per_kop = [r["cpu"]["server_cpu_ms_per_1000_operations"] or 0.0 for r in rounds]
        summary[side][0].append(statistics.median(ops))
        summary[side][1].append((statistics.median(per_mb), statistics.median(per_kop)))
        print(f"{side}-{pair}: {statistics.median(ops):.1f} ops/s, server "
              f"{statistics.median(per_mb):.2f} CPU-ms/MB, {statistics.median(per_kop):.0f} CPU-ms/1k ops")
for side, (ops, cpu) in summary.items():
    print(f"{side} median of runs: {statistics.median(ops):.1f} ops/s, "
          f"{statistics.median(c[0] for c in cpu):.2f} CPU-ms/MB, "
          f"{statistics.median(c[1] for c in cpu):.0f} CPU-ms/1k ops")
print(f"B/A ops/s: {statistics.median(summary['B'][0]) / statistics.median(summary['A'][0]):.2f}")
EOF
