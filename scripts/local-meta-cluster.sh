#!/usr/bin/env bash
# Starts a local 3-replica metadata cluster (`cairn meta`) on 127.0.0.1:7401-7403 with data under
# ${CAIRN_META_DATA:-./cairn-meta-data}; Ctrl-C stops all three. Build first:
#   cargo build --release -p cairn
set -euo pipefail
binary="${CAIRN_BIN:-$(dirname "$0")/../target/release/cairn}"
data="${CAIRN_META_DATA:-./cairn-meta-data}"
peers="1=127.0.0.1:7401,2=127.0.0.1:7402,3=127.0.0.1:7403"
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
trap stop EXIT INT TERM
for id in 1 2 3; do
  "$binary" meta --id "$id" --listen "127.0.0.1:740$id" --data "$data/meta-$id" --peers "$peers" &
  pids+=($!)
done
echo "metadata replicas: $peers (data in $data); Ctrl-C stops them"
wait
