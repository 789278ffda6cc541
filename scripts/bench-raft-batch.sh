#!/usr/bin/env bash
# Group commit of metadata proposals (the Raft leader's proposer): 4 KiB PUT at concurrency 32
# against two `cairn dev`s on this machine in one `cairn-bench compare` run (rounds alternate
# between them, order flipped every round, ratios with min/median/max): "batch" (this build's
# release `cairn`) and "main" (BASELINE, a release `cairn` built before group commit). Then each
# binary alone under the same load while `strace -f -c` counts its fdatasync calls for 10 s:
# fdatasync per PUT = calls / (PUTs/s of that run x 10 s).
#
# Usage: BASELINE=/path/to/baseline/cairn scripts/bench-raft-batch.sh
#        (ROUNDS=3, SECONDS_PER_ROUND=5 by default; ONLY="put-4KiB-c32 fsync" selects parts)
# Environment: see scripts/bench-common.sh.
set -euo pipefail
NAME=raft-batch
source "$(dirname "$0")/bench-common.sh"
BASELINE=${BASELINE:?set BASELINE to the baseline release cairn binary}
OURS=$CAIRN

if selected put-4KiB-c32; then
    echo "== put-4KiB-c32" >&2
    start run-a 19900 "$WORK/logs/put-4KiB-c32-batch.log"
    a_pid=$PID a_access=$ACCESS_KEY a_secret=$SECRET_KEY
    CAIRN=$BASELINE
    start run-b 19950 "$WORK/logs/put-4KiB-c32-main.log"
    CAIRN=$OURS
    AWS_ACCESS_KEY_ID=$a_access AWS_SECRET_ACCESS_KEY=$a_secret \
        "$BENCH" compare put --size 4KiB --concurrency 32 --keys 1000000 \
        --endpoint "http://127.0.0.1:19900" --name batch --pid "$a_pid" \
        --notes "$NOTES; group commit of metadata proposals" \
        --peer-endpoint "http://127.0.0.1:19950" --peer-name main \
        --peer-access-key "$ACCESS_KEY" --peer-secret-key "$SECRET_KEY" \
        --peer-pid "$PID" --peer-notes "$NOTES; baseline $BASELINE, one Raft entry per command" \
        --rounds "$ROUNDS" --seconds "$SECONDS_PER_ROUND" --quiet \
        --json "$OUT/put-4KiB-c32.json"
    stop_servers
fi

# fsyncs NAME BINARY: fdatasync calls of one `cairn dev` over 10 s of 4 KiB PUTs at c32.
fsyncs() {
    echo "== fsync $1" >&2
    CAIRN=$2
    start run-a 19900 "$WORK/logs/fsync-$1.log"
    CAIRN=$OURS
    local server=$PID
    AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY \
        "$BENCH" s3 put --endpoint "http://127.0.0.1:19900" --size 4KiB --concurrency 32 \
        --keys 1000000 --seconds 10 --warmup-seconds 2 --quiet \
        --json "$OUT/fsync/$1-load.json" &
    local load=$!
    sleep 2
    timeout -s INT 10 strace -f -c -e trace=fdatasync,fsync -p "$server" \
        -o "$OUT/fsync/$1-strace.txt" || true
    wait "$load"
    stop_servers
}

if selected fsync; then
    mkdir -p "$OUT/fsync"
    fsyncs batch "$OURS"
    fsyncs main "$BASELINE"
    python3 - "$OUT" <<'PYTHON'
import json, re, sys
out = sys.argv[1]
for name in ("batch", "main"):
    load = json.load(open(f"{out}/fsync/{name}-load.json"))
    ops = load["workloads"][0]["rounds"][0]["ops_per_second"]
    text = open(f"{out}/fsync/{name}-strace.txt").read()
    calls = int(re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?fdatasync", text, re.M).group(1))
    print(f"{name}: {calls} fdatasync in 10 s at {ops:.0f} PUT/s: {calls / (ops * 10):.2f} per PUT")
PYTHON
fi
[[ -f $OUT/put-4KiB-c32.json ]] && summary batch main
