# End-to-end: text of every width in the tty panel (tmux). Class names and
# set_desc texts with CJK, emoji, combining marks, invalid UTF-8 and control
# characters, and an error text with CJK and emoji (the "Last error" line):
# no panel line wraps (the terminal's own view: the screen captured with and
# without joining wrapped lines holds the same panel), every busy worker row takes
# exactly width-1 columns (so the elapsed times line up), cut text ends with
# "…" and never splits a character, invalid bytes show as U+FFFD, control
# characters as spaces, and a combining mark stays on its letter.
# Fixture: display_wide.lua.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/tmux.sh
source "$(dirname "$0")/lib/tmux.sh"


# The display columns of each line on stdin, one number per line (wcwidth's
# rules: East Asian Wide/Fullwidth 2, combining and format characters 0).
# (python3 -S: without the site packages it starts faster; called once a screen)
columns() {
  "$PY" -S -c '
import sys, unicodedata as u
def w(c):
    if u.category(c) in ("Mn", "Me", "Cf") or 0x1160 <= ord(c) <= 0x11ff:
        return 0
    return 2 if u.east_asian_width(c) in ("W", "F") else 1
lines = sys.stdin.buffer.read().decode("utf-8", "replace").split("\n")
if lines[-1] == "":
    lines.pop()
for line in lines:  # (split at newlines only: one number per line of the input)
    print(sum(w(c) for c in line))
'
}

check_screen() { # cols, label
  local cols="$1" label="$2" joined plain widths
  joined="$(tm capture-pane -p -J -t "$PANE" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}')"
  plain="$(tm capture-pane -p -t "$PANE" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}')"
  SCREEN="$joined"
  # The panel: from its header to the screen's end or the summary.
  local panel_re='/^ Workers /,$p'
  expect_eq "$(printf '%s\n' "$plain" | sed -n "$panel_re" | sed '/^aqueue: /,$d' | wc -l)" \
    "$(printf '%s\n' "$joined" | sed -n "$panel_re" | sed '/^aqueue: /,$d' | wc -l)" \
    "$label: no line of the panel is wrapped by the terminal"
  widths="$(s_panel | columns)"
  local longest
  longest="$(printf '%s\n' "$widths" | sort -n | tail -1)"
  [ "$longest" -le $((cols - 1)) ] || screen_fail "$label: a panel line takes $longest columns (at most $((cols - 1)))"
  pass "$label: every panel line takes at most width-1 columns ($longest)"
  local rows bad
  rows="$(s_panel | u8grep -E '^  [0-9] ')"
  if [ "${3:-}" = final ]; then
    expect_eq "$rows" "" "$label: no worker rows in the final frame"
    return
  fi
  # the rows' widths, from those of the panel's lines
  bad="$(paste -d '\t' <(printf '%s\n' "$widths") <(s_panel) | u8grep -E $'^[0-9]+\t  [0-9] ' | cut -f1 |
    grep -vx "$((cols - 1))" | head -1)"
  [ -z "$bad" ] || screen_fail "$label: a busy worker row takes $bad columns, not exactly $((cols - 1))"
  pass "$label: every busy worker row takes exactly width-1 columns (the elapsed times line up)"
}

# The two runs start side by side (each waits for the test to release it);
# the checks take one after the other.
for cols in 100 72; do
  mkdir "$TMP/w$cols"
  tmux_run "w$cols" "$cols" 30 -- "$FIX/display_wide.lua" "$TMP/w$cols"
done
for cols in 100 72; do
  D="$TMP/w$cols"
  tmux_use "w$cols"
  tmux_wait_file "$D/ready" "$START_WAIT" "$cols cols: the items run (ready)"
  tmux_wait_screen_re '^ Last error ' "$QUICK" "$cols cols: the Last error line is shown"
  tmux_wait_screen_re '^ Workers  5/5 busy' "$QUICK" "$cols cols: five busy workers"
  nap 0.3
  check_screen "$cols" "$cols cols"
  s_match '^  [0-9] . 頁面Page \(attempt 2/2\)  漢字のテキスト 漢字.*…  +[0-9.]+s$' "$cols cols: a CJK class name and a cut CJK text with '…'"
  s_match '^  [0-9] . Emoji😀  emoji 😀🚀🎉 😀.*…  +[0-9.]+s$' "$cols cols: an emoji class name and a cut emoji text"
  s_match $'^  [0-9] . Cafe\xcc\x81  combining e\xcc\x81e\xcc\x81e\xcc\x81 (a\xcc\x81)+…  +[0-9.]+s$' \
    "$cols cols: combining marks stay on their letters (class name and text)"
  s_match '^  [0-9] . Bad�Class  invalid �� bytes � and control \[31m text +[0-9.]+s$' \
    "$cols cols: invalid bytes as U+FFFD, TAB and ESC as spaces"
  s_match '^  [0-9] . 頁面Page  short 漢字 ok +[0-9.]+s$' "$cols cols: a short CJK text as it is"
  s_match '^   頁面Page +0 +2 +0 +0 +0 +2$' "$cols cols: the Queue row of the CJK class lines up"
  s_match '^   Bad�Class +0 +1 +0 +0 +0 +1$' "$cols cols: the Queue row of the invalid class name"
  s_match '^ Last error  頁面Page:process failed .*…$' "$cols cols: the CJK error cut with '…'"
  touch "$D/release"
  tmux_wait_exit "$QUICK" "$cols cols: the run ends once released"
  tmux_expect_rc 0 "$cols cols: the retry succeeded"
  check_screen "$cols" "$cols cols, final frame" final
  tmux_kill_run
done

finish
