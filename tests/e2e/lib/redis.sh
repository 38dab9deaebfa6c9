# shellcheck shell=bash disable=SC2034 # (REDIS_URL, REDIS_PID... are used by the tests that source this)
# tests/e2e/lib/redis.sh — a private redis-server for an end-to-end test of a
# run shared through Redis (--redis). Sourced after lib/common.sh:
#
#   source "$(dirname "$0")/lib/common.sh"
#   source "$(dirname "$0")/lib/redis.sh"
#   redis_start                       # or: redis_start --password secret --appendfsync everysec
#   "$AQUEUE_RUN" --redis "$REDIS_URL" --run NAME script.lua
#   rcli HGETALL "aq:{NAME}:counts"   # redis-cli against it
#   redis_restart                     # kill -9, then the same port, directory and options
#
# The server listens on 127.0.0.1 on a port nobody listened on, keeps its
# files in $TMP/redis (appendonly yes; appendfsync always unless asked
# otherwise, so a kill -9 of the server loses no reply it gave), and is
# killed by its PID when the test ends (common.sh's list of background
# processes). No test touches a Redis it did not start.
#
# Sets REDIS_PORT, REDIS_URL (with the password when there is one),
# REDIS_PID, REDIS_DIR. Waiting for the server costs no process: the PING is
# sent and read by bash through /dev/tcp.

REDIS_DIR="$TMP/redis"
REDIS_DIR_REAL="" # REDIS_DIR without symbolic links, as the server reports it
REDIS_PORT=""
REDIS_PID=""
REDIS_URL=""
REDIS_PASSWORD=""
REDIS_APPENDFSYNC=always

# _redis_ping : true when the server answers PING with PONG (after AUTH when
# it has a password) and is this test's: its directory is REDIS_DIR (another
# test's server may have taken the port between our check that it was free
# and our server's bind, which then fails: its PONG is not ours). A server
# still loading its append-only file answers LOADING, which is not yet.
_redis_ping() {
  local fd reply dir line
  exec {fd}<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || return 1
  if [ -n "$REDIS_PASSWORD" ]; then
    printf 'AUTH %s\r\n' "$REDIS_PASSWORD" >&"$fd"
    read -r -t 2 reply <&"$fd"
  fi
  printf 'PING\r\nCONFIG GET dir\r\n' >&"$fd"
  reply=""
  read -r -t 2 reply <&"$fd"
  for line in 1 2 3 4 5; do # *2, $3, dir, $N, the directory
    read -r -t 2 dir <&"$fd" || break
  done
  exec {fd}>&-
  [[ $reply == +PONG* && ${dir%$'\r'} == "$REDIS_DIR_REAL" ]]
}

# _redis_spawn : starts redis-server on REDIS_PORT in REDIS_DIR (its output
# in $TMP/redis.log) and waits until it answers. Returns 1 when it ended
# first (the port was taken meanwhile: the caller tries another).
_redis_spawn() {
  local args=(--port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --appendonly yes
    --appendfsync "$REDIS_APPENDFSYNC" --save "" --daemonize no --logfile "$TMP/redis.log")
  [ -n "$REDIS_PASSWORD" ] && args+=(--requirepass "$REDIS_PASSWORD")
  redis-server "${args[@]}" </dev/null >/dev/null 2>&1 &
  REDIS_PID=$!
  BG_PIDS="$BG_PIDS $REDIS_PID"
  local deadline=$((SECONDS + START_WAIT))
  until _redis_ping 2>/dev/null; do
    kill -0 "$REDIS_PID" 2>/dev/null || return 1
    [ "$SECONDS" -lt "$deadline" ] || fail "redis-server on port $REDIS_PORT did not answer PING within ${START_WAIT}s"
    nap 0.02
  done
}

# redis_start [--password P] [--appendfsync always|everysec|no]
# shellcheck disable=SC2120 # (the options are optional)
redis_start() {
  while [ $# -gt 0 ]; do
    case "$1" in
    --password) REDIS_PASSWORD="$2" ;;
    --appendfsync) REDIS_APPENDFSYNC="$2" ;;
    *) fail "redis_start: unknown option $1" ;;
    esac
    shift 2
  done
  mkdir -p "$REDIS_DIR"
  REDIS_DIR_REAL="$(cd "$REDIS_DIR" && pwd -P)"
  local tries fd
  for tries in 1 2 3 4 5 6 7 8 9 10; do
    REDIS_PORT=$((20000 + RANDOM % 40000))
    # a port where a connection is refused: nobody listens there (yet)
    if exec {fd}<>"/dev/tcp/127.0.0.1/$REDIS_PORT"; then
      exec {fd}>&-
      continue
    fi 2>/dev/null
    _redis_spawn && break
    REDIS_PORT=""
  done
  [ -n "$REDIS_PORT" ] || fail "redis_start: no free port in $tries tries (last log: $(tail -2 "$TMP/redis.log" 2>/dev/null))"
  REDIS_URL="redis://${REDIS_PASSWORD:+:$REDIS_PASSWORD@}127.0.0.1:$REDIS_PORT"
}

# redis_kill : kill -9 of the server, reaped (its files stay as they were).
redis_kill() {
  kill -KILL "$REDIS_PID" 2>/dev/null
  wait "$REDIS_PID" 2>/dev/null
}

# redis_restart [DOWN_SECONDS] : kill -9 of the server, and after
# DOWN_SECONDS (default none) a new one on the same port, in the same
# directory, with the same options (it reloads the append-only file).
redis_restart() {
  redis_kill
  [ -n "${1:-}" ] && nap "$1"
  _redis_spawn || fail "redis_restart: redis-server did not start again on port $REDIS_PORT: $(tail -3 "$TMP/redis.log")"
}

# rcli ARGS... : redis-cli against the test's server.
rcli() {
  if [ -n "$REDIS_PASSWORD" ]; then
    redis-cli -p "$REDIS_PORT" -a "$REDIS_PASSWORD" --no-auth-warning "$@"
  else
    redis-cli -p "$REDIS_PORT" "$@"
  fi
}
