#!/usr/bin/env bash
# Runs a local Roster cluster on loopback from cluster-configs/, in the foreground of one shell.
#
#   scripts/run-cluster.sh [three|five|CONFIG_DIR]          (`make run`, `make run5`)
#
# Every *.yaml in the config directory is one node. The nodes run in their own sessions, so a
# Ctrl-C reaches only this script, which then sends each node SIGTERM (a graceful leave: the
# others see it as `left`, not `failed`), waits for them with a bound, and only then exits. A node
# still running after STOP_TIMEOUT seconds is killed and reported.
#
# Needs the binary (ROSTER_BIN, default .build/debug/roster) and the dev certificates the configs
# name (scripts/dev-certs.sh; `make run` does both). Each node logs to DATA_DIR.log next to its
# data directory; the logs are also followed on the terminal unless FOLLOW_LOGS=0.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"  # the configs' relative paths are relative to the repository root

BIN="${ROSTER_BIN:-.build/debug/roster}"
START_TIMEOUT="${START_TIMEOUT:-30}"   # seconds for every node to answer /health
JOIN_TIMEOUT="${JOIN_TIMEOUT:-20}"     # seconds for every node to see every other alive
STOP_TIMEOUT="${STOP_TIMEOUT:-10}"     # seconds for all nodes to exit after SIGTERM
FOLLOW_LOGS="${FOLLOW_LOGS:-1}"

case "${1:-three}" in
    three | five) CONFIG_DIR="cluster-configs/${1:-three}" ;;
    *) CONFIG_DIR="${1%/}" ;;
esac

die() { echo "run-cluster: $*" >&2; exit 1; }

[ -x "$BIN" ] || die "no roster binary at $BIN; run 'make build' first (or set ROSTER_BIN)"
[ -d "$CONFIG_DIR" ] || die "no config directory $CONFIG_DIR"
shopt -s nullglob
CONFIGS=("$CONFIG_DIR"/*.yaml)
shopt -u nullglob
[ ${#CONFIGS[@]} -gt 0 ] || die "no *.yaml node configs in $CONFIG_DIR"

# key FILE KEY: the scalar value of a top-level `key: value` line, without a trailing comment.
key() { sed -n "s/^$2:[[:space:]]*\\([^[:space:]#]*\\).*/\\1/p" "$1" | head -n 1; }

# listening HOST:PORT: true if something accepts TCP connections there.
listening() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

NAMES=() HTTPS=() DNSS=() BINDS=() LOGS=()
for cfg in "${CONFIGS[@]}"; do
    name="$(key "$cfg" node_name)" http="$(key "$cfg" http)" bind="$(key "$cfg" bind)"
    data="$(key "$cfg" data_dir)" dns="$(key "$cfg" dns)"
    [ -n "$name" ] && [ -n "$http" ] && [ -n "$bind" ] && [ -n "$data" ] \
        || die "$cfg needs node_name, http, bind and data_dir"
    for f in tls_ca tls_cert tls_key; do
        path="$(key "$cfg" "$f")"
        [ -z "$path" ] || [ -r "$path" ] || die "$cfg: $f $path is missing; run scripts/dev-certs.sh (or make certs)"
    done
    for addr in "$http" "$bind"; do
        if listening "$addr"; then
            die "$addr ($name) is already in use: is another 'make run' still running?"
        fi
    done
    mkdir -p "$data"
    NAMES+=("$name") HTTPS+=("$http") DNSS+=("$dns") BINDS+=("$bind") LOGS+=("$data.log")
done
COUNT=${#NAMES[@]}

PIDS=()         # the nodes, by index; cleared once reaped
VIEWER=""       # the log follower's process group (a session of its own)

# exited PID: true once the process is gone or a zombie (it is our child, so `wait` reaps it).
exited() {
    local state
    if [ -r "/proc/$1/stat" ]; then
        state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
    else
        state="$(ps -o stat= -p "$1" 2>/dev/null)"
    fi
    [ -z "$state" ] || [ "${state:0:1}" = Z ]
}

# reap I: collects node I's exit code once it has exited; prints it.
reap() {
    local i=$1 code
    wait "${PIDS[$i]}" 2>/dev/null
    code=$?
    echo "run-cluster: ${NAMES[$i]} (pid ${PIDS[$i]}) exited with code $code"
    PIDS[i]=""
    return $code
}

stop_viewer() {
    if [ -n "$VIEWER" ]; then
        kill -TERM -- "-$VIEWER" 2>/dev/null
        wait "$VIEWER" 2>/dev/null
        VIEWER=""
    fi
}

STOPPING=0
# stop_all [CODE]: stops every node gracefully and exits with CODE (default 0), or 1 if a node
# did not stop cleanly.
stop_all() {
    [ $STOPPING = 1 ] && return
    STOPPING=1
    local code=${1:-0}
    trap '' INT TERM HUP  # a second Ctrl-C must not cut the graceful stop short
    echo
    echo "run-cluster: stopping: SIGTERM to every node (graceful leave), waiting up to ${STOP_TIMEOUT}s"
    local i failed=0 deadline=$((SECONDS + STOP_TIMEOUT))
    for i in "${!PIDS[@]}"; do
        [ -n "${PIDS[$i]}" ] && kill -TERM "${PIDS[$i]}" 2>/dev/null
    done
    while :; do
        local left=0
        for i in "${!PIDS[@]}"; do
            [ -n "${PIDS[$i]}" ] || continue
            if exited "${PIDS[$i]}"; then
                reap "$i" || failed=1
            else
                left=1
            fi
        done
        [ $left = 0 ] && break
        if [ $SECONDS -ge $deadline ]; then
            for i in "${!PIDS[@]}"; do
                [ -n "${PIDS[$i]}" ] || continue
                echo "run-cluster: ${NAMES[$i]} (pid ${PIDS[$i]}) still running after ${STOP_TIMEOUT}s: SIGKILL" >&2
                kill -KILL "${PIDS[$i]}" 2>/dev/null
                reap "$i"
                failed=1
            done
            break
        fi
        sleep 0.1
    done
    stop_viewer
    if [ $failed = 0 ]; then
        echo "run-cluster: all $COUNT nodes stopped cleanly; state kept in $(dirname "${LOGS[0]}")/"
    else
        echo "run-cluster: not every node stopped cleanly; see the logs in $(dirname "${LOGS[0]}")/" >&2
    fi
    [ $failed = 0 ] || code=1
    exit $code
}
trap 'stop_all 0' INT TERM HUP

echo "run-cluster: starting $COUNT nodes from $CONFIG_DIR/ with $BIN"
for i in "${!CONFIGS[@]}"; do
    printf '\n===== %s: start %s agent --config %s\n' "$(date -u +%FT%TZ)" "$BIN" "${CONFIGS[$i]}" >>"${LOGS[$i]}"
    # setsid: a session of its own, so the terminal's Ctrl-C goes to this script, not the node.
    setsid "$BIN" agent --config "${CONFIGS[$i]}" </dev/null >>"${LOGS[$i]}" 2>&1 &
    PIDS[i]=$!
done

# Every node answers /health, or the start failed.
deadline=$((SECONDS + START_TIMEOUT))
for i in "${!PIDS[@]}"; do
    until curl -fsS -o /dev/null --max-time 1 "http://${HTTPS[$i]}/health" 2>/dev/null; do
        if exited "${PIDS[$i]}"; then
            echo "run-cluster: ${NAMES[$i]} did not start; the end of ${LOGS[$i]}:" >&2
            tail -n 20 "${LOGS[$i]}" >&2
            reap "$i"
            stop_all 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "run-cluster: ${NAMES[$i]} not answering on http://${HTTPS[$i]} after ${START_TIMEOUT}s" >&2
            stop_all 1
        fi
        sleep 0.2
    done
done

# Every node sees every node alive (the table of `roster members`).
alive_everywhere() {
    local i name table
    for i in "${!HTTPS[@]}"; do
        table="$("$BIN" members --http "${HTTPS[$i]}" 2>/dev/null)" || return 1
        for name in "${NAMES[@]}"; do
            grep -Eq "^${name}[[:space:]].*[[:space:]]alive([[:space:]]|$)" <<<"$table" || return 1
        done
    done
}
deadline=$((SECONDS + JOIN_TIMEOUT))
until alive_everywhere; do
    if [ $SECONDS -ge $deadline ]; then
        echo "run-cluster: WARNING: after ${JOIN_TIMEOUT}s not every node sees all $COUNT alive; members at ${NAMES[0]}:" >&2
        "$BIN" members --http "${HTTPS[0]}" >&2
        break
    fi
    sleep 0.2
done

H1="${HTTPS[0]}" H2="${HTTPS[1]:-${HTTPS[0]}}" D1="${DNSS[0]}"
echo
echo "Roster: $COUNT-node mutual-TLS cluster on loopback from $CONFIG_DIR/"
for i in "${!NAMES[@]}"; do
    printf '  %-4s HTTP http://%-16s DNS %-16s peers %-16s log %s\n' \
        "${NAMES[$i]}" "${HTTPS[$i]}" "${DNSS[$i]}" "${BINDS[$i]}" "${LOGS[$i]}"
done
cat <<EOF

Point a client at any node (HTTP API: native /registry/... and Consul /v1/...), e.g.
  curl -X PUT -d '{"Name":"web","ID":"web-1","Port":8080}' http://$H1/v1/agent/service/register
  curl http://$H2/v1/health/service/web     # the same service, read at another node
  export CONSUL_HTTP_ADDR=$H1               # for the Consul CLI and client libraries
  $BIN members --http $H1
  dig @${D1%:*} -p ${D1##*:} web.service.roster.
Ctrl-C stops every node gracefully (they leave the cluster); state is kept for the next run.

EOF
"$BIN" members --http "$H1" 2>/dev/null
echo

if [ "$FOLLOW_LOGS" != 0 ]; then
    # New log lines of every node, prefixed with its name; a session of its own, stopped by us.
    setsid bash -c '
        for i in $(seq 1 $(($# / 2))); do
            name="${@:i*2-1:1}" log="${@:i*2:1}"
            tail -n 0 -F "$log" 2>/dev/null | sed -u "s/^/[$name] /" &
        done
        wait' _ $(for i in "${!NAMES[@]}"; do printf '%s %s ' "${NAMES[$i]}" "${LOGS[$i]}"; done) &
    VIEWER=$!
fi

# Watch the nodes until Ctrl-C; a node that dies (say, `kill -9` to try failure detection) is
# reported and the others keep running.
while :; do
    running=0
    for i in "${!PIDS[@]}"; do
        [ -n "${PIDS[$i]}" ] || continue
        if exited "${PIDS[$i]}"; then
            reap "$i"
        else
            running=$((running + 1))
        fi
    done
    if [ $running = 0 ]; then
        echo "run-cluster: every node has exited" >&2
        stop_viewer
        exit 1
    fi
    sleep 1 &
    wait $! 2>/dev/null
done
