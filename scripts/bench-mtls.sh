#!/usr/bin/env bash
# What internal mutual TLS costs: the same workloads against two `cairn dev`s on this machine, in
# one run of `cairn-bench compare` per workload (rounds alternate between them, order flipped
# every round, ratios with min/median/max): "mtls" (the default: every storage and metadata RPC
# over mutual TLS 1.3 under the dev's CA) and "plain" (`--insecure-plaintext-internal`). Both
# encrypt objects at rest (SSE-S3, the default) so only the internal transport differs. Each
# workload starts both on fresh data directories and deletes them afterwards.
#
# Workloads: PUT and GET of 16 MiB objects at concurrency 8, PUT of 4 KiB objects at
# concurrency 32.
#
# Usage: scripts/bench-mtls.sh   (ROUNDS=3, SECONDS_PER_ROUND=5 by default; 16 MiB PUT rounds are
#                                 capped at LARGE_PUT_OPERATIONS operations to bound disk use)
# Environment: CARGO_TARGET_DIR (release `cairn` and `cairn-bench`), WORK (scratch, default
# /var/tmp/cairn-bench-mtls), OUT (results directory), ONLY (space-separated workload names).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CAIRN=$TARGET/release/cairn
BENCH=$TARGET/release/cairn-bench
WORK=${WORK:-/var/tmp/cairn-bench-mtls}
OUT=${OUT:-$ROOT/benches/results/$(date -u +%F)-mtls}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
LARGE_PUT_OPERATIONS=${LARGE_PUT_OPERATIONS:-48}

[[ -x $CAIRN && -x $BENCH ]] || {
    echo "build first: cargo build --release -p cairn -p cairn-bench (CARGO_TARGET_DIR=$TARGET)" >&2
    exit 1
}
mkdir -p "$WORK/logs" "$OUT"

PIDS=()
stop_servers() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    PIDS=()
    rm -rf "$WORK/mtls" "$WORK/plain"
    for port in 19900 19950; do
        for _ in $(seq 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
            sleep 0.1
        done
    done
}
trap stop_servers EXIT

wait_for_port() {
    for _ in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# start NAME BASE_PORT LOG [FLAGS...]: one cairn dev on BASE_PORT (S3), +1 (admin), +2 (meta),
# +10.. (storage); sets PID and the keys.
start() {
    local name=$1 base=$2 log=$3
    shift 3
    "$CAIRN" dev --data "$WORK/$name" --listen "127.0.0.1:$base" \
        --admin-listen "127.0.0.1:$((base + 1))" --meta-port $((base + 2)) \
        --storage-base-port $((base + 10)) "$@" >"$log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    wait_for_port "$base"
    for _ in $(seq 100); do
        grep -q "secret key:" "$log" && break
        sleep 0.1
    done
    ACCESS_KEY=$(sed -n 's/^ *access key: *//p' "$log" | tail -1)
    SECRET_KEY=$(sed -n 's/^ *secret key: *//p' "$log" | tail -1)
}

NOTES="cairn dev $(git -C "$ROOT" rev-parse --short HEAD): EC 4+2 over 6 storage nodes in 3 AZs, shards fsynced before ack"

run() {
    local name=$1
    shift
    [[ -z ${ONLY:-} || " $ONLY " == *" $name "* ]] || return 0
    echo "== $name" >&2
    start mtls 19900 "$WORK/logs/$name-mtls.log"
    local mtls_pid=$PID mtls_access=$ACCESS_KEY mtls_secret=$SECRET_KEY
    start plain 19950 "$WORK/logs/$name-plain.log" --insecure-plaintext-internal
    local plain_pid=$PID
    AWS_ACCESS_KEY_ID=$mtls_access AWS_SECRET_ACCESS_KEY=$mtls_secret \
        "$BENCH" compare "$@" \
        --endpoint "http://127.0.0.1:19900" --name mtls --pid "$mtls_pid" \
        --notes "$NOTES; internal RPC over mutual TLS" \
        --peer-endpoint "http://127.0.0.1:19950" --peer-name plain \
        --peer-access-key "$ACCESS_KEY" --peer-secret-key "$SECRET_KEY" \
        --peer-pid "$plain_pid" --peer-notes "$NOTES; --insecure-plaintext-internal" \
        --rounds "$ROUNDS" --seconds "$SECONDS_PER_ROUND" --quiet \
        --json "$OUT/$name.json"
    stop_servers
}

run put-16MiB-c8 put --size 16MiB --concurrency 8 --keys 1000000 --operations "$LARGE_PUT_OPERATIONS"
run get-16MiB-c8 get --size 16MiB --concurrency 8 --keys 16
run put-4KiB-c32 put --size 4KiB --concurrency 32 --keys 1000000

python3 - "$OUT" <<'EOF'
import glob, json, os, sys
print(f"{'workload':<16} {'mtls ops/s':>12} {'MB/s':>8} {'plain ops/s':>12} {'MB/s':>8}  mtls/plain min/med/max")
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    document = json.load(open(path))
    for workload in document.get("workloads", []):
        a, b, ratio = workload["a"], workload["b"], workload["ratio_a_over_b_ops_per_second"]
        print(f"{os.path.basename(path)[:-5]:<16} {a['ops_per_second']['median']:>12.1f} "
              f"{a['megabytes_per_second']['median']:>8.1f} {b['ops_per_second']['median']:>12.1f} "
              f"{b['megabytes_per_second']['median']:>8.1f}  "
              f"{ratio['min']:.2f}/{ratio['median']:.2f}/{ratio['max']:.2f}")
print(f"{os.cpu_count()} cores shared by the client and both servers")
EOF
