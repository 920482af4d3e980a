#!/usr/bin/env bash
# Development certificates for the local clusters of cluster-configs/: a CA and one certificate
# per node, made with the real binary (`roster tls ca create`, `roster tls cert create`).
#
#   scripts/dev-certs.sh [DIR] [NODE...]        defaults: .run/certs  n1 n2 n3 n4 n5
#
# Only what is missing is made; existing files are kept (the binary never overwrites them
# either). A node whose certificate exists without its key, or the other way round, is an error:
# delete the directory and run again. Run from anywhere; DIR is relative to the repository root.
# ROSTER_BIN picks the binary (default .build/debug/roster).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${ROSTER_BIN:-.build/debug/roster}"
DIR="${1:-.run/certs}"
shift || true
NODES=("$@")
[ ${#NODES[@]} -gt 0 ] || NODES=(n1 n2 n3 n4 n5)

if [ ! -x "$BIN" ]; then
    echo "dev-certs: no roster binary at $BIN; run 'make build' first (or set ROSTER_BIN)" >&2
    exit 1
fi

mkdir -p "$DIR"
chmod 700 "$DIR"

# both PEM KEY: 0 if both exist, 1 if neither, fails if only one does.
pair_state() {
    if [ -e "$1" ] && [ -e "$2" ]; then return 0; fi
    if [ ! -e "$1" ] && [ ! -e "$2" ]; then return 1; fi
    echo "dev-certs: $1 and $2 must exist together; remove $DIR and run again" >&2
    exit 1
}

made=()
if ! pair_state "$DIR/ca.pem" "$DIR/ca-key.pem"; then
    # A new CA makes every node certificate already there useless: they would not chain to it.
    for n in "${NODES[@]}"; do
        if [ -e "$DIR/$n.pem" ]; then
            echo "dev-certs: $DIR/$n.pem exists but the CA does not; remove $DIR and run again" >&2
            exit 1
        fi
    done
    "$BIN" tls ca create --dir "$DIR" >/dev/null
    made+=(ca)
fi
for n in "${NODES[@]}"; do
    if ! pair_state "$DIR/$n.pem" "$DIR/$n-key.pem"; then
        "$BIN" tls cert create --dir "$DIR" --node "$n" >/dev/null
        made+=("$n")
    fi
done

if [ ${#made[@]} -gt 0 ]; then
    echo "dev-certs: made ${made[*]} in $DIR/"
else
    echo "dev-certs: $DIR/ already holds the CA and ${NODES[*]}"
fi
