#!/usr/bin/env bash
# What internal mutual TLS costs: the same workloads against two `cairn dev`s on this machine, in
# one run of `cairn-bench compare` per workload (rounds alternate between them, order flipped
# every round, ratios with min/median/max): "mtls" (every storage and metadata RPC over mutual
# TLS 1.3 under the dev's CA, encrypted throughout: `--encrypt-loopback`; MTLS_FLAGS="" measures
# the default instead, where storage RPC continues in plaintext after the handshake on loopback)
# and "plain" (`--insecure-plaintext-internal`). Both
# encrypt objects at rest (SSE-S3, the default) so only the internal transport differs. Each
# workload starts both on fresh data directories and deletes them afterwards.
#
# Workloads: PUT and GET of 16 MiB objects at concurrency 8, PUT of 4 KiB objects at
# concurrency 32.
#
# Usage: scripts/bench-mtls.sh   (ROUNDS=3, SECONDS_PER_ROUND=5 by default; 16 MiB PUT rounds are
#                                 capped at LARGE_PUT_OPERATIONS operations to bound disk use)
# Environment: see scripts/bench-common.sh.
set -euo pipefail
NAME=mtls
source "$(dirname "$0")/bench-common.sh"

pair() {
    compare_devs mtls "${MTLS_FLAGS---encrypt-loopback}" plain "--insecure-plaintext-internal" \
        "internal RPC over mutual TLS ${MTLS_FLAGS---encrypt-loopback}" "--insecure-plaintext-internal" "$@"
}
pair put-16MiB-c8 put --size 16MiB --concurrency 8 --keys 1000000 --operations "$LARGE_PUT_OPERATIONS"
pair get-16MiB-c8 get --size 16MiB --concurrency 8 --keys 16
pair put-4KiB-c32 put --size 4KiB --concurrency 32 --keys 1000000
summary mtls plain
