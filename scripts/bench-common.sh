# Shared by the scripts/bench-*.sh comparisons (source it; it is not run on its own): release
# binaries, scratch and result directories, starting and stopping `cairn dev` processes, and the
# summary table of a directory of `cairn-bench compare` results.
#
# The sourcing script sets NAME (scratch and result directory suffix) before sourcing, and uses:
#   start DIR BASE_PORT LOG [FLAGS...]  one `cairn dev` with data in $WORK/DIR, S3 on BASE_PORT,
#                                       admin +1, meta +2, storage +10..; sets PID, ACCESS_KEY,
#                                       SECRET_KEY
#   track PID                           stop this process too at the end of the workload
#   stop_servers                        stops everything started, deletes $WORK/run-*
#   wait_for_port PORT
#   summary A_NAME B_NAME               the table of $OUT/*.json
#   require_free_gib GIB                exits unless $WORK's file system has GIB GiB free
# Environment: CARGO_TARGET_DIR (release `cairn` and `cairn-bench`), WORK (scratch, default
# /var/tmp/cairn-bench-$NAME), OUT (results directory), ROUNDS, SECONDS_PER_ROUND,
# LARGE_PUT_OPERATIONS, ONLY (space-separated workload names).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CAIRN=$TARGET/release/cairn
BENCH=$TARGET/release/cairn-bench
WORK=${WORK:-/var/tmp/cairn-bench-$NAME}
OUT=${OUT:-$ROOT/benches/results/$(date -u +%F)-$NAME}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
LARGE_PUT_OPERATIONS=${LARGE_PUT_OPERATIONS:-48}
NOTES="cairn dev $(git -C "$ROOT" rev-parse --short HEAD): EC 4+2 over 6 storage nodes in 3 AZs, shards fsynced before ack"

[[ -x $CAIRN && -x $BENCH ]] || {
    echo "build first: cargo build --release -p cairn -p cairn-bench (CARGO_TARGET_DIR=$TARGET)" >&2
    exit 1
}
mkdir -p "$WORK/logs" "$OUT"

# A run that fills the disk stops half-way on the servers' disk-full errors (Cairn answers 503
# ServiceUnavailable once its nodes are full), so the scripts check the free space first.
require_free_gib() {
    local free_kib
    free_kib=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
    if ((free_kib < $1 * 1024 * 1024)); then
        echo "$WORK has $((free_kib / 1024 / 1024)) GiB free and this run needs about $1 GiB:" \
            "free some space, point WORK elsewhere, or set MIN_FREE_GIB" >&2
        exit 1
    fi
}

PIDS=()
PORTS=()
track() { PIDS+=("$1"); }

stop_servers() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    PIDS=()
    rm -rf "$WORK"/run-*
    for port in "${PORTS[@]}"; do
        for _ in $(seq 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
            sleep 0.1
        done
    done
    PORTS=()
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

# Whether workload $1 is selected by ONLY.
selected() { [[ -z ${ONLY:-} || " $ONLY " == *" $1 "* ]]; }

start() {
    local dir=$1 base=$2 log=$3
    shift 3
    "$CAIRN" dev --data "$WORK/$dir" --listen "127.0.0.1:$base" \
        --admin-listen "127.0.0.1:$((base + 1))" --meta-port $((base + 2)) \
        --storage-base-port $((base + 10)) "$@" >"$log" 2>&1 &
    PID=$!
    track "$PID"
    PORTS+=("$base")
    wait_for_port "$base"
    for _ in $(seq 100); do
        grep -q "secret key:" "$log" && break
        sleep 0.1
    done
    ACCESS_KEY=$(sed -n 's/^ *access key: *//p' "$log" | tail -1)
    SECRET_KEY=$(sed -n 's/^ *secret key: *//p' "$log" | tail -1)
}

summary() {
    python3 - "$OUT" "$1" "$2" <<'PYTHON'
import glob, json, os, sys
out, a_name, b_name = sys.argv[1:4]
print(f"{'workload':<16} {a_name + ' ops/s':>14} {'MB/s':>8} {'p50/p99 ms':>13} "
      f"{b_name + ' ops/s':>14} {'MB/s':>8} {'p50/p99 ms':>13}  {a_name}/{b_name} min/med/max")
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    document = json.load(open(path))
    for workload in document.get("workloads", []):
        a, b, ratio = workload["a"], workload["b"], workload["ratio_a_over_b_ops_per_second"]
        def latency(side):
            ms = side.get("latency_ms") or {}
            return f"{ms.get('p50', float('nan')):.1f}/{ms.get('p99', float('nan')):.1f}"
        print(f"{os.path.basename(path)[:-5]:<16} {a['ops_per_second']['median']:>14.1f} "
              f"{a['megabytes_per_second']['median']:>8.1f} {latency(a):>13} "
              f"{b['ops_per_second']['median']:>14.1f} "
              f"{b['megabytes_per_second']['median']:>8.1f} {latency(b):>13}  "
              f"{ratio['min']:.2f}/{ratio['median']:.2f}/{ratio['max']:.2f}")
        for name, side in ((a_name, a), (b_name, b)):
            cpu = side.get("cpu") or {}
            if "server_cpu_ms_per_megabyte" in cpu:
                print(f"{'':<16}   {name}: servers {cpu['server_cpu_ms_per_megabyte']['median']:.2f} CPU-ms/MB, "
                      f"{cpu['server_cpu_ms_per_1000_operations']['median']:.0f} CPU-ms/1k ops, client "
                      f"{cpu['client_cpu_seconds']['median']:.1f} CPU-s/round, machine busy "
                      f"{cpu['machine_busy_fraction']['median']:.2f}")
print(f"{os.cpu_count()} cores shared by the client and the servers")
PYTHON
}

# compare_devs A_NAME "A_FLAGS" B_NAME "B_FLAGS" NOTE_A NOTE_B WORKLOAD BENCH_ARGS...: two fresh
# `cairn dev`s (A on 19900, B on 19950) and one `cairn-bench compare` between them.
compare_devs() {
    local a_name=$1 a_flags=$2 b_name=$3 b_flags=$4 a_note=$5 b_note=$6 workload=$7
    shift 7
    selected "$workload" || return 0
    echo "== $workload" >&2
    # shellcheck disable=SC2086 # the flags are words
    start run-a 19900 "$WORK/logs/$workload-$a_name.log" $a_flags
    local a_pid=$PID a_access=$ACCESS_KEY a_secret=$SECRET_KEY
    # shellcheck disable=SC2086
    start run-b 19950 "$WORK/logs/$workload-$b_name.log" $b_flags
    AWS_ACCESS_KEY_ID=$a_access AWS_SECRET_ACCESS_KEY=$a_secret \
        "$BENCH" compare "$@" \
        --endpoint "http://127.0.0.1:19900" --name "$a_name" --pid "$a_pid" \
        --notes "$NOTES; $a_note" \
        --peer-endpoint "http://127.0.0.1:19950" --peer-name "$b_name" \
        --peer-access-key "$ACCESS_KEY" --peer-secret-key "$SECRET_KEY" \
        --peer-pid "$PID" --peer-notes "$NOTES; $b_note" \
        --rounds "$ROUNDS" --seconds "$SECONDS_PER_ROUND" --quiet \
        --json "$OUT/$workload.json"
    stop_servers
}
