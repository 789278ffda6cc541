#!/usr/bin/env bash
# What the edge PoP costs (issue 8's benchmark): the same workloads through `cairn edge` and
# directly to the gateway behind it, in one run of `cairn-bench compare` per workload (rounds
# alternate between them, order flipped every round, ratios with min/median/max; p50/p99
# latency per side). Both sides are HTTPS under one dev CA (`cairn edge dev-cert`):
#   "edge"   https://localhost:19980 — TLS termination, SigV4 at the edge, the WASM routing
#            module, the hot-object cache, and the proxy hop to the gateway's edge listener
#            (`--edge-listen`): mutual TLS, which on this one host (loopback at both ends)
#            continues in plaintext after the handshake; DEV_FLAGS=--encrypt-loopback keeps it
#            encrypted, as it is between hosts;
#   "direct" https://localhost:19900 — the same `cairn dev` gateway's own S3 TLS listener.
# One `cairn dev` serves both sides (separate buckets), so the difference is the edge alone.
#
# Workloads: PUT and GET of 16 MiB objects at concurrency 8 (larger than the edge caches, so
# every GET is proxied; target ≥ 0.8 of direct; on a machine the client and every process share,
# the cores are saturated and the ratio is the two paths' CPU per byte, which the JSON records
# per side with `--cpu-pid`), the same GET at concurrency 1 (cores not saturated: what the extra
# hop costs in latency alone), GET of 4 KiB objects at concurrency 16 (served
# from the edge's hot-object cache after the first read of each key: cache-hit GET), PUT of
# 4 KiB objects at concurrency 16. The WASM routing decision cost is `cairn-bench edge-routing`.
#
# Usage: scripts/bench-edge.sh   (ROUNDS=3, SECONDS_PER_ROUND=5 by default; needs the routing
#                                 module: edge-wasm/build-wasm.sh)
# Environment: see scripts/bench-common.sh; DEV_FLAGS (extra `cairn dev` flags); EDGE_CPU=both (default), edge or gateway: whose CPU
# the edge side's "servers" figure counts (the edge and the gateway behind it, or one of them).
set -euo pipefail
NAME=edge
source "$(dirname "$0")/bench-common.sh"

MODULE=${MODULE:-$ROOT/edge-wasm/build/cairn_edge_routing.wasm}
[[ -f $MODULE ]] || { echo "build the routing module first: edge-wasm/build-wasm.sh" >&2; exit 1; }
CERTS=$WORK/certs
rm -rf "$CERTS"
"$CAIRN" edge dev-cert --out "$CERTS" >/dev/null
GATEWAY_EDGE_PORT=19970
if [[ " ${DEV_FLAGS:-} " == *" --encrypt-loopback "* ]]; then
    HOP="hop encrypted"
else
    HOP="hop plaintext after the handshake on loopback"
fi
EDGE_PORT=19980

run() {
    local workload=$1
    shift
    selected "$workload" || return 0
    echo "== $workload" >&2
    # shellcheck disable=SC2086 # DEV_FLAGS are words
    start run-dev 19900 "$WORK/logs/$workload-dev.log" \
        --tls-cert "$CERTS/server.pem" --tls-key "$CERTS/server-key.pem" \
        --edge-listen "127.0.0.1:$GATEWAY_EDGE_PORT" ${DEV_FLAGS:-}
    local dev_pid=$PID
    "$CAIRN" ca issue --ca "$WORK/run-dev/tls/ca" --name bench-edge --role edge \
        --out "$WORK/run-edge-identity" >/dev/null
    "$CAIRN" edge --listen "127.0.0.1:$EDGE_PORT" --admin-listen "127.0.0.1:$((EDGE_PORT + 1))" \
        --tls-cert "$CERTS/server.pem" --tls-key "$CERTS/server-key.pem" --module "$MODULE" \
        --region "us-east-1=127.0.0.1:$GATEWAY_EDGE_PORT" --meta "1=127.0.0.1:19902" \
        --partitions 4 --master-key-file "$WORK/run-dev/master-key" \
        --tls-dir "$WORK/run-edge-identity" --tls-crl "$WORK/run-dev/tls/ca/crl.pem" ${EDGE_FLAGS:-} \
        >"$WORK/logs/$workload-edge.log" 2>&1 &
    local edge_pid=$!
    track "$edge_pid"
    local cpu_pids
    case ${EDGE_CPU:-both} in
        both) cpu_pids=(--cpu-pid "$edge_pid" --cpu-pid "$dev_pid") ;;
        edge) cpu_pids=(--cpu-pid "$edge_pid") ;;
        gateway) cpu_pids=(--cpu-pid "$dev_pid") ;;
        *) echo "EDGE_CPU must be both, edge or gateway" >&2; exit 1 ;;
    esac
    PORTS+=("$EDGE_PORT")
    wait_for_port "$EDGE_PORT"
    AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY \
        "$BENCH" compare "$@" --ca-bundle "$CERTS/ca.pem" \
        --endpoint "https://localhost:$EDGE_PORT" --name edge --pid "$edge_pid" \
        "${cpu_pids[@]}" \
        --bucket cairn-bench-edge \
        --notes "$NOTES; through cairn edge (TLS, SigV4, WASM routing, hot-object cache, mutual TLS to the gateway, ${HOP})" \
        --peer-endpoint "https://localhost:19900" --peer-name direct \
        --peer-access-key "$ACCESS_KEY" --peer-secret-key "$SECRET_KEY" \
        --peer-bucket cairn-bench-direct --peer-pid "$dev_pid" \
        --peer-notes "$NOTES; the gateway's S3 TLS listener" \
        --rounds "$ROUNDS" --seconds "$SECONDS_PER_ROUND" --quiet \
        --json "$OUT/$workload.json"
    curl -s "http://127.0.0.1:$((EDGE_PORT + 1))/metrics" | grep -E '^cairn_edge_(cache|upstream)' \
        >"$OUT/$workload.edge-metrics.txt" || true
    stop_servers
}

run put-16MiB-c8 put --size 16MiB --concurrency 8 --keys 1000000 --operations "$LARGE_PUT_OPERATIONS"
run get-16MiB-c8 get --size 16MiB --concurrency 8 --keys 16
run get-16MiB-c1 get --size 16MiB --concurrency 1 --keys 16
run get-4KiB-c16 get --size 4KiB --concurrency 16 --keys 100
run put-4KiB-c16 put --size 4KiB --concurrency 16 --keys 1000000
summary edge direct
