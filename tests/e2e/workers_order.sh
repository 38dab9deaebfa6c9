# End-to-end: -w/--workers and --order are applied, and win over the script's
# own num_workers/order (SPEC section 3); the fixtures record what they observe.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

# --- workers: the most items seen running at once ---
# (Each run mostly sleeps, 20 items of 50 ms on its workers: the runs go side
# by side, and are checked once all have started.)
W="$FIX/workers.lua"
CASE_WANT=() CASE_WHAT=() # by case, in the order started (the run: "w<case>")
workers_case() { # expected max running, description, aqueue-run options... (then the script's num_workers)
  local want="$1" what="$2"
  shift 2
  local script_workers="${*: -1}"
  set -- "${@:1:$(($# - 1))}"
  start_bg "w${#CASE_WANT[@]}" "$AQUEUE_RUN" "$@" "$W" 20 "$script_workers"
  CASE_WANT+=("$want") CASE_WHAT+=("$what")
}
check_workers_case() { # case number (from 0)
  local want="${CASE_WANT[$1]}" what="${CASE_WHAT[$1]}"
  use_bg "w$1"
  wait_bg "$RUN_TIMEOUT" "$what: the run ends"
  expect_rc 0 "$what"
  expect_eq "$(value_of "$OUT" processed)" 20 "$what: all 20 items processed"
  expect_eq "$(value_of "$OUT" max_running)" "$want" "$what: at most $want items ran at once, and $want did"
}
workers_case 5 "no -w (default 5 workers)" -
workers_case 3 "-w 3" -w 3 -
workers_case 1 "-w1" -w1 -
workers_case 4 "-w4" -w4 -
workers_case 7 "--workers=7" --workers=7 -
workers_case 2 "--workers 2" --workers 2 -
workers_case 20 "-w 30 with 20 items (more workers than items: all at once)" -w 30 -
workers_case 9 "-w 9, the script gives num_workers = 4: the command line wins" -w 9 4
workers_case 2 "--workers=2, the script gives num_workers = 6: the command line wins" --workers=2 6
workers_case 6 "no -w, the script gives num_workers = 6" 6
for n in "${!CASE_WANT[@]}"; do check_workers_case "$n"; done

# --- order: the start order with one worker ---
O="$FIX/order.lua"
LIFO_FLAT="6,5,4,3,2,1"
LIFO_TREE="R2,R2b,R2a,R1,R1b,R1a"
FIFO_FLAT="1,2,3,4,5,6"
FIFO_TREE="R1,R2,R1a,R1b,R2a,R2b"
PRIO_FLAT="2,4,5,3,1,6"             # priorities 3 -1 2.5 -1 0 3: lower first, ties in enqueue order
PRIO_TREE="R1,R1b,R2,R2b,R1a,R2a"   # children: a priority 1, b priority -1
order_case() { # flat, tree, description, args...
  local flat="$1" tree="$2" what="$3"
  shift 3
  run "$AQUEUE_RUN" "$@"
  expect_rc 0 "$what"
  expect_eq "$(value_of "$OUT" flat)" "$flat" "$what: initial items start in order $flat"
  expect_eq "$(value_of "$OUT" tree)" "$tree" "$what: the item tree is walked in order $tree"
}
order_case "$LIFO_FLAT" "$LIFO_TREE" "no --order (default lifo)" "$O" -
order_case "$LIFO_FLAT" "$LIFO_TREE" "--order lifo" --order lifo "$O" -
order_case "$FIFO_FLAT" "$FIFO_TREE" "--order fifo" --order fifo "$O" -
order_case "$FIFO_FLAT" "$FIFO_TREE" "--order=fifo" --order=fifo "$O" -
order_case "$PRIO_FLAT" "$PRIO_TREE" "--order priority" --order priority "$O" -
order_case "$PRIO_FLAT" "$PRIO_TREE" "-w 3 --order=priority" -w 3 --order=priority "$O" -
order_case "$FIFO_FLAT" "$FIFO_TREE" "--order fifo, the script gives lifo: the command line wins" --order fifo "$O" lifo
order_case "$LIFO_FLAT" "$LIFO_TREE" "--order lifo, the script gives priority: the command line wins" --order lifo "$O" priority
order_case "$PRIO_FLAT" "$PRIO_TREE" "--order=priority, the script gives fifo: the command line wins" --order=priority "$O" fifo
order_case "$FIFO_FLAT" "$FIFO_TREE" "no --order, the script gives fifo" "$O" fifo

finish
