#!/usr/bin/env bash
# What SSE-S3 costs: the same workloads against two `cairn dev`s on this machine, in one run of
# `cairn-bench compare` per workload (rounds alternate between them, order flipped every round,
# ratios with min/median/max): "sse-s3" (the default: every object encrypted, AES-256-GCM in
# 64 KiB chunks before erasure coding) and "plain" (`--no-default-encryption`). Each workload
# starts both on fresh data directories and deletes them afterwards.
#
# Workloads: PUT and GET of 16 MiB objects at concurrency 8, PUT and GET of 4 KiB objects at
# concurrency 32. Target (issue 11): sse-s3 / plain >= 0.85 on 16 MiB.
#
# Usage: scripts/bench-sse.sh   (ROUNDS=3, SECONDS_PER_ROUND=5 by default; 16 MiB PUT rounds are
#                                capped at LARGE_PUT_OPERATIONS operations to bound disk use)
# Environment: see scripts/bench-common.sh.
set -euo pipefail
NAME=sse
source "$(dirname "$0")/bench-common.sh"

pair() {
    compare_devs sse-s3 "" plain "--no-default-encryption" \
        "SSE-S3 on every object" "--no-default-encryption" "$@"
}
pair put-16MiB-c8 put --size 16MiB --concurrency 8 --keys 1000000 --operations "$LARGE_PUT_OPERATIONS"
pair get-16MiB-c8 get --size 16MiB --concurrency 8 --keys 16
pair put-4KiB-c32 put --size 4KiB --concurrency 32 --keys 1000000
pair get-4KiB-c32 get --size 4KiB --concurrency 32 --keys 1000
summary sse-s3 plain
