# shellcheck shell=bash disable=SC2034 # (SCREEN, RC... are used by the tests that source this)
# tests/e2e/lib/tmux.sh — runs aqueue-run in a real pseudo-terminal (a tmux
# pane) for the end-to-end tests of the live display. Sourced after common.sh:
#
#   source "$(dirname "$0")/lib/common.sh"
#   source "$(dirname "$0")/lib/tmux.sh"
#   tmux_run main 100 30 -- "$FIX/display_panel.lua" "$TMP/d"   # starts the run
#   tmux_wait_screen " Workers" 10 "the panel is drawn"           # sets SCREEN
#   tmux_wait_exit 10 "the run ends"                              # sets RC, SCREEN
#
# Every test script gets its own tmux server on a private socket (-L, no
# config file), killed on exit; other tmux servers are never touched. Each run
# is a session of that server whose only pane runs a bash wrapper:
#   - it waits for a "go" file, so that the test can set the pane up (size,
#     pipe-pane) before aqueue-run writes its first byte;
#   - it runs aqueue-run in the foreground of the terminal (so Ctrl-C sent with
#     send-keys reaches it), writes its exit status to a file, and then sleeps:
#     the pane stays alive and its screen can still be read (a dead pane's
#     screen is not reliable);
#   - it traps SIGINT itself (a trap is reset to the default in aqueue-run), so
#     a Ctrl-C does not end the wrapper before aqueue-run's status is written.
# Sanitizer reports of aqueue-run-asan land in the pane (its stderr):
# tmux_wait_exit fails when its screen or scrollback shows one.

if ! command -v tmux >/dev/null 2>&1; then
  echo "FAIL [$TEST_NAME]: tmux is not installed (scripts/lib/setup.sh installs it)" >&2
  exit 1
fi

TMUX_SOCK="aqueue-e2e-$TEST_NAME-$$-$RANDOM"
PANE=""     # the session of the current run
SCREEN=""   # the last capture of its screen

# tmux on this test's own server only (even when the tests run inside tmux:
# no TMUX in this shell, so no tmux command of the test talks to that one).
# (-u and a UTF-8 locale: tmux reads and reports the panes' UTF-8 text as it is,
# whatever the locale the tests run under; the panes get their own locale.)
unset TMUX
tm() {
  LC_ALL=C.UTF-8 tmux -u -L "$TMUX_SOCK" -f /dev/null "$@"
}

tmux_cleanup() {
  tm kill-server >/dev/null 2>&1
  rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$TMUX_SOCK" # tmux leaves its socket file
  cleanup
}
trap tmux_cleanup EXIT
# The server stays up between runs (a run's session is killed when done).
tm start-server \; set -g exit-empty off || {
  echo "FAIL [$TEST_NAME]: cannot start a tmux server" >&2
  exit 1
}

# Shown with a failure: the screen of the current run.
_show_screen() {
  if [ -n "$PANE" ]; then
    echo "  --- screen of tmux session $PANE ---" >&2
    tm capture-pane -p -J -t "$PANE" 2>/dev/null | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' | sed 's/^/  | /' >&2
  fi
}

tfail() {
  echo "FAIL [$TEST_NAME]: $*" >&2
  _show_screen
  exit 1
}

# tmux_run NAME COLS ROWS [VAR=VALUE | -VAR | >FILE | 2>FILE ...] -- ARGS...
# Starts "$AQUEUE_RUN ARGS..." in a new COLSxROWS session NAME (the current
# run from then on). Its environment: this one's, with LANG=C.UTF-8, and no
# LC_ALL, LC_CTYPE or NO_COLOR unless given; VAR=VALUE sets a variable, -VAR
# removes one. >FILE / 2>FILE redirect its stdout / stderr to a file (the
# other stays on the terminal).
tmux_run() {
  local name="$1" cols="$2" rows="$3"
  shift 3
  local envs=(-u LC_ALL -u LC_CTYPE -u NO_COLOR "LANG=C.UTF-8")
  local redir=""
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    case "$1" in
    2\>*) redir="$redir 2>$(printf '%q' "${1#2>}")" ;;
    \>*) redir="$redir >$(printf '%q' "${1#>}")" ;;
    -*) envs+=(-u "${1#-}") ;;
    *=*) envs+=("$1") ;;
    *) tfail "tmux_run: bad argument [$1]" ;;
    esac
    shift
  done
  [ "$1" = "--" ] && shift
  PANE="$name"
  rm -f "$TMP/$name.rc" "$TMP/$name.go"
  local wrapper="$TMP/$name.pane.sh"
  {
    echo "trap ':' INT"
    # (the wait naps on common.sh's fifo, as nap does: no sleep process per turn)
    echo "while [ ! -e $(printf '%q' "$TMP/$name.go") ]; do read -r -t 0.01 _ <>$(printf '%q' "$TMP/.nap"); done"
    echo "cd $(printf '%q' "$PWD") || exit 1"
    printf 'env'
    printf ' %q' "${envs[@]}" "$AQUEUE_RUN" "$@"
    echo "$redir"
    echo "echo \$? >$(printf '%q' "$TMP/$name.rc.tmp") && mv $(printf '%q' "$TMP/$name.rc.tmp") $(printf '%q' "$TMP/$name.rc")"
    echo "exec sleep 600"
  } >"$wrapper"
  LAST_CMD="$AQUEUE_RUN $* (in tmux session $name, ${cols}x$rows)"
  tm new-session -d -s "$name" -x "$cols" -y "$rows" bash "$wrapper" ||
    tfail "tmux_run: cannot start a tmux session"
  if [ -z "${TMUX_NO_GO:-}" ]; then tmux_go; fi
}

# tmux_use NAME: makes the run started earlier as NAME the current one again
# (runs that wait for their control files can start side by side).
tmux_use() {
  PANE="$1"
}

# Lets the current run start (tmux_run does it, unless TMUX_NO_GO is set:
# then call tmux_go after setting the pane up).
tmux_go() {
  touch "$TMP/$PANE.go"
}

# Records all the pane's output bytes from now on in FILE.
tmux_record() {
  tm pipe-pane -t "$PANE" -o "cat >>$(printf '%q' "$1")"
}

# shellcheck disable=SC2120 # (called with -e, or with no argument)
# tmux_screen [-e]: the visible screen, wrapped lines joined, into SCREEN
# (-e: with colour escapes).
tmux_screen() {
  SCREEN="$(tm capture-pane -p -J "$@" -t "$PANE")"
}

# tmux_wait_screen TEXT SECONDS DESCRIPTION: waits until TEXT is on screen.
tmux_wait_screen() {
  local text="$1" secs="$2" what="$3"
  local deadline=$(($((${EPOCHREALTIME/[.,]/} / 1000)) + secs * 1000))
  while :; do
    tmux_screen
    case "$SCREEN" in *"$text"*) break ;; esac
    [ "$((${EPOCHREALTIME/[.,]/} / 1000))" -ge "$deadline" ] && tfail "$what: [$text] did not appear on screen within ${secs}s"
    nap 0.05
  done
  pass "$what"
}

# tmux_wait_screen_re REGEX SECONDS DESCRIPTION: waits until a line of the
# screen matches the extended REGEX.
tmux_wait_screen_re() {
  local re="$1" secs="$2" what="$3"
  local deadline=$(($((${EPOCHREALTIME/[.,]/} / 1000)) + secs * 1000))
  while :; do
    tmux_screen
    u8grep -Eq -- "$re" <<<"$SCREEN" && break
    [ "$((${EPOCHREALTIME/[.,]/} / 1000))" -ge "$deadline" ] && tfail "$what: no line matching /$re/ appeared on screen within ${secs}s"
    nap 0.05
  done
  pass "$what"
}

# tmux_wait_file FILE SECONDS DESCRIPTION: waits until FILE exists (the
# fixtures mark their progress with files).
tmux_wait_file() {
  local file="$1" secs="$2" what="$3"
  local deadline=$(($((${EPOCHREALTIME/[.,]/} / 1000)) + secs * 1000))
  while [ ! -e "$file" ]; do
    if [ -e "$TMP/$PANE.rc" ]; then
      read -r RC <"$TMP/$PANE.rc"
      san_check "$what: the run ended before $(basename "$file") appeared"
      tfail "$what: the run ended (status $RC) before $(basename "$file") appeared"
    fi
    [ "$((${EPOCHREALTIME/[.,]/} / 1000))" -ge "$deadline" ] && tfail "$what: $(basename "$file") did not appear within ${secs}s"
    nap 0.02
  done
  pass "$what"
}

# tmux_running: true while aqueue-run runs in the current pane.
tmux_running() {
  [ ! -e "$TMP/$PANE.rc" ]
}

# Fails when the pane (screen or scrollback) shows a sanitizer report.
san_check() { # description
  local all
  all="$(tm capture-pane -p -J -S - -t "$PANE")"
  if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:|SUMMARY: [A-Za-z]+Sanitizer' <<<"$all"; then
    echo "FAIL [$TEST_NAME]: $1: a sanitizer report (exit status ${RC:-?}):" >&2
    printf '%s\n' "$all" | grep -E -A30 'ERROR: [A-Za-z]+Sanitizer|runtime error:' | head -60 | sed 's/^/  | /' >&2
    exit 1
  fi
}

# tmux_wait_exit SECONDS DESCRIPTION: waits for aqueue-run to end; sets RC and
# SCREEN. Fails on a sanitizer report.
tmux_wait_exit() {
  local secs="$1" what="$2"
  local deadline=$(($((${EPOCHREALTIME/[.,]/} / 1000)) + secs * 1000))
  while [ ! -e "$TMP/$PANE.rc" ]; do
    [ "$((${EPOCHREALTIME/[.,]/} / 1000))" -ge "$deadline" ] && tfail "$what: aqueue-run still running after ${secs}s"
    nap 0.02
  done
  read -r RC <"$TMP/$PANE.rc"
  nap 0.1 # the last bytes through the pty into tmux
  san_check "$what"
  tmux_screen
  pass "$what"
}

tmux_expect_rc() { # want, description
  [ "$RC" = "$1" ] || tfail "$2: expected exit status $1, got $RC"
  pass "$2: exit status $1"
}

# The pid of aqueue-run in the current pane (a child of the wrapper).
tmux_pid() {
  local wrapper
  wrapper="$(tm display -p -t "$PANE" '#{pane_pid}')"
  pgrep -P "$wrapper" | head -1
}

# 1 when the pane's cursor is visible, 0 when hidden.
tmux_cursor() {
  tm display -p -t "$PANE" '#{cursor_flag}'
}

tmux_expect_cursor() { # 1|0, description
  local got
  got="$(tmux_cursor)"
  [ "$got" = "$1" ] || tfail "$2: expected cursor_flag $1, got $got"
  pass "$2"
}

tmux_keys() {
  tm send-keys -t "$PANE" "$@"
}

tmux_resize() { # cols, rows
  tm resize-window -t "$PANE" -x "$1" -y "$2"
}

tmux_kill_run() {
  tm kill-session -t "$PANE" 2>/dev/null
}

# --- checks on SCREEN ---

# grep in a UTF-8 locale, whatever the tests' one: a pattern like "─+" then
# repeats the character, not its last byte.
u8grep() {
  LC_ALL=C.UTF-8 grep "$@"
}

# A check on SCREEN failed: show that screen (the one checked).
screen_fail() {
  echo "FAIL [$TEST_NAME]: $*" >&2
  echo "  --- the screen checked${PANE:+ (tmux session $PANE)} ---" >&2
  printf '%s\n' "$SCREEN" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' | sed 's/^/  | /' >&2
  exit 1
}

s_contains() { # needle, description
  case "$SCREEN" in
  *"$1"*) pass "$2" ;;
  *) screen_fail "$2: expected the screen to contain [$1]" ;;
  esac
}

s_not_contains() { # needle, description
  case "$SCREEN" in
  *"$1"*) screen_fail "$2: expected the screen NOT to contain [$1]" ;;
  *) pass "$2" ;;
  esac
}

s_match() { # extended regex (one line must match), description
  u8grep -Eq -- "$1" <<<"$SCREEN" || screen_fail "$2: expected a line matching /$1/"
  pass "$2"
}

s_no_match() { # extended regex, description
  if u8grep -Eq -- "$1" <<<"$SCREEN"; then
    screen_fail "$2: expected no line matching /$1/, found: $(u8grep -E -- "$1" <<<"$SCREEN" | head -3)"
  fi
  pass "$2"
}

s_count() { # extended regex -> number of matching lines of SCREEN
  u8grep -Ec -- "$1" <<<"$SCREEN"
}

s_count_is() { # extended regex, count, description
  local n
  n="$(s_count "$1")"
  [ "$n" = "$2" ] || screen_fail "$3: expected $2 line(s) matching /$1/, found $n"
  pass "$3"
}

# The line number (from 1) of the first line of SCREEN matching the extended
# regex, 0 when none.
s_line_of() {
  local n
  n="$(printf '%s\n' "$SCREEN" | u8grep -En -- "$1" | head -1 | cut -d: -f1)"
  echo "${n:-0}"
}

s_line() { # number -> that line of SCREEN
  sed -n "${1}p" <<<"$SCREEN"
}

# The number of characters of a text (UTF-8, whatever the tests' locale).
str_width() {
  local LC_ALL=C.UTF-8
  local text="$1"
  echo "${#text}"
}

# The panel's lines on SCREEN: from each " Workers" header to the " Overall"
# line that ends its panel.
s_panel() {
  sed -n '/^ Workers /,/^ Overall /p' <<<"$SCREEN"
}

# Every line of the panel on SCREEN (wrapped lines joined) takes at most MAX
# columns (one per character: the panel writes no double-width characters).
s_panel_fits() { # max, description
  local LC_ALL=C.UTF-8 # ${#line} counts characters, not bytes
  local line max="$1" longest=0 long_line="" panel
  panel="$(s_panel)"
  [ -n "$panel" ] || screen_fail "$2: no panel on screen"
  while IFS= read -r line; do
    if [ "${#line}" -gt "$longest" ]; then
      longest=${#line}
      long_line="$line"
    fi
  done <<<"$panel"
  [ "$longest" -le "$max" ] || screen_fail "$2: a line takes $longest columns (at most $max): [$long_line]"
  pass "$2"
}

# Line A (a regex's first match) is above line B.
s_above() { # regex A, regex B, description
  local a b
  a="$(s_line_of "$1")"
  b="$(s_line_of "$2")"
  [ "$a" -gt 0 ] || screen_fail "$3: no line matches /$1/"
  [ "$b" -gt 0 ] || screen_fail "$3: no line matches /$2/"
  [ "$a" -lt "$b" ] || screen_fail "$3: /$1/ is on line $a, not above /$2/ (line $b)"
  pass "$3"
}
