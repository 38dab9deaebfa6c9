-- aqueue.queue_backend: the seam between the scheduler and where a run's
-- queue is kept. run_queue talks to the queue only through a backend object,
-- one per run_queue call, made by open() below:
--
--   memory   (aqueue.backends.memory)  the default: the queue lives in this
--            process and ends with it
--   sqlite   (aqueue.backends.sqlite)  --state FILE: every step is also
--            written to the state file, and a rerun resumes from it
--   redis    (aqueue.backends.redis)   --redis URL --run NAME: a run shared
--            by several processes, kept in Redis (a remote queue, below)
--
-- A backend is the queue's record of truth: which items exist (enqueue, with
-- key() dedup), what became of each (processed: done or failed, retried),
-- which subtrees are finished, the counters, and what a new run resumes.
-- Running the items (worker slots, order, limits, delays, timeouts) is the
-- engine's scheduler's job, whatever the backend.
--
-- The interface. Every method is called on the loop thread from the task that
-- does the step, and must not yield unless it says so. `item` is the item
-- table; `parent` its parent's (nil for a root item).
--
--   b.name                         "memory" | "sqlite" | "redis"
--   b.durable                      true when the queue outlives the process
--   b.local_queue                  true when the items to run are the ones
--                                  enqueued in this process (see claim)
--
--   b:resume(classes, restore, level) -> counts | nil
--       Before the run: hands every unfinished item it holds to
--       restore(item, parent, open, attempts), parents before children
--       (open: processed, waiting for its subtree). Returns the counts of
--       what it held ({ pending, open, done, failed, tracked_done }), or nil
--       when there was no run to resume. Raises at `level` when it cannot.
--   b:admit(parent, child, class_name, level) -> known_item, err | nil, ticket
--       First step of enqueue, once the item is checked: raises at `level`
--       when the backend cannot keep it (a state file needs JSON fields).
--       Returns the same item enqueued before (a re-running parent's
--       child: the live item, or false and its error when it finished), or
--       nil and a ticket that the later steps of this enqueue pass back.
--   b:seen(key) -> true when an item with this key() was enqueued before
--   b:enqueued(child, parent, key, ticket)
--       The scheduler took the item: record it (and its key, for seen).
--   b:held(child, parent, key, ticket) -> kept
--       The run is stopping and the item was not taken: a durable backend
--       keeps it for the next run (true: its parent's subtree stays open),
--       a memory one lets it go (false).
--   b:retrying(item, attempt, wait) process() failed; it will run again
--   b:processed(item, ok, attempt, err)
--                                  process() is over for good: done or failed
--   b:hook_ran(item)               its after_children_processed ran (or
--                                  raised): it must never run again
--   b:finished(item)               the item's subtree is finished (its hook,
--                                  if any, ran): it will never run again;
--                                  called once per item
--   b:finish() -> true | nil, why  the run ended: make it durable (may yield)
--   b:counters(summary) -> { done, failed, pending }
--       After finish: the whole run's figures as the queue holds them (a
--       resumed run's include what earlier processes did): items done and
--       failed for good, and items left to run (pending) for a later run.
--       `summary` is this process's (run_queue's): a backend whose queue was
--       the scheduler's gives its figures.
--   b:abandon()                    the run could not start: write nothing
--
-- A remote queue (Redis: several processes share one run) is a backend with
-- local_queue false. run_queue then takes its remote path (aqueue.run_remote,
-- chosen once per run): the items are the store's, and this process's
-- scheduler only runs the jobs it claims. Such a backend has the methods
-- above except `enqueued` (and `held`, `finished` do nothing), with these
-- meanings:
--   b.first                        false when this process joined a run that
--                                  another created (it enqueues no initial item)
--   b:start() -> joined | nil      the run starts here (the backend's own
--                                  tasks begin): nil for the process that
--                                  created the run, else the counts of what the
--                                  run held ({ pending, open, done, failed })
--   b:admit(parent, child, class_name, level)
--                                  raises when the item cannot travel (its
--                                  fields must be JSON)
--   b:seen(key)                    true for a key this process enqueued (the
--                                  store refuses the others' itself)
--   b:enqueue(child, parent, entry) -> entry
--       Keeps the item for the store: with the completion of its parent (a
--       job this process runs), or in the next batch when it has none.
--       entry: { class, key, priority, delay, limit_key, max_attempts,
--       has_hook }; the backend adds fields (JSON) and, once sent, id (false
--       for a duplicate). Raises when the parent's job is a hook.
--   b:claim(n, deliver)
--       Asks the store for up to n jobs, in a task of its own (one round trip
--       for the batch), and calls deliver(jobs, finished, reached) from that
--       task, once (reached: the run's max_items is reached, no process job
--       will come any more):
--       jobs a list of { item = <a new item of its class, from its fields>,
--       hook = true for a hook job, attempt = n, start_in = seconds to wait
--       before it starts (a rate's start handed out ahead) or nil }, possibly
--       empty (then after a short wait, as a poll), and finished true when the store holds
--       nothing of the run that is unfinished. deliver returns false when the
--       run takes no more jobs: the backend hands them back (release). One
--       claim at a time; the scheduler asks again as its jobs leave.
--   b:set_max_items(n)             the run's max_items (0: none), for all its
--                                  processes: the store counts the starts
--   b:elapsed()                    seconds since the run's session began, in
--                                  the store's clock (max_time counts from there)
--   b:processed(item, ok, attempt, err, result)
--                                  a job's process() is over for good: its
--                                  outcome (and its first result) goes with
--                                  the item's children in the next batch
--   b:retrying(item, attempt, wait) the attempt failed: the store runs it
--                                  again after `wait` seconds (it left this
--                                  process: aq__sched_retry_remote)
--   b:hook_ran(item)               a hook job is over
--   b:release(items)               claimed jobs that did not start (a graceful
--                                  stop): back to the store at once
--   b:result(entry) -> ...         handle:result() of an item enqueued here:
--                                  asks the store until its outcome is in
--                                  (yields)
--   b:finish()                     sends what is buffered, stops its tasks,
--                                  reads the run's counters, leaves the run
--   b:counters()                   the whole run's (all processes)
--   b.on_counters                  set by run_remote: called with the store's
--                                  counters a few times a second (the display)
-- The local backends never get claim: their items are the scheduler's from
-- the moment they are enqueued, which is the fast path of one process.
local M = {}

-- The methods every backend has (the backend spec checks each one).
M.METHODS = {
  "resume", "admit", "seen", "held", "retrying", "processed", "hook_ran", "finished",
  "finish", "counters", "abandon",
}

-- The methods of a local backend (local_queue true) besides, and those of a
-- remote one.
M.LOCAL_METHODS = { "enqueued" }
M.REMOTE_METHODS = { "start", "enqueue", "claim", "release", "set_max_items", "elapsed" }

-- The backend of a run: redis when opts.redis (a URL) is given (opts: run,
-- fresh, order, limits, classes), sqlite when `state_file` is given (opts:
-- fresh, retry_failed), else memory. Raises at `level` when the state file
-- cannot be used (it is left as it was); a Redis run that cannot be used ends
-- the process with status 2.
function M.open(state_file, opts, level)
  if opts.redis then
    return require("aqueue.backends.redis").open(opts.redis, opts.run, opts)
  end
  if state_file then
    return require("aqueue.backends.sqlite").open(state_file, opts, level + 1)
  end
  return require("aqueue.backends.memory").open()
end

return M
