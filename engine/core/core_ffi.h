/*
 * core_ffi.h — the functions of the core that the Lua library calls through
 * LuaJIT's FFI: the scheduler's hot path and the naming of limit keys. Each
 * takes the engine (core.engine) and hands on to its scheduler or display
 * (sched_ffi.c).
 *
 * This file is the only copy of these declarations. The C side includes it
 * (sched_ffi.c), so the compiler checks each definition against it; the build
 * embeds its text (cmake/embed_text.cmake) and aqueue.core hands that text to
 * lua/aqueue/sched.lua as core.ffi_cdef for ffi.cdef. So it stays plain C
 * that ffi.cdef parses: no preprocessor lines (no include guard: declaring a
 * function twice is allowed), no macros, only types ffi.cdef knows (int32_t,
 * int64_t, size_t, double) and `struct aq_engine *`. Its includer provides
 * <stdint.h> and <stddef.h>.
 *
 * These functions never call into Lua (a JIT-compiled FFI call must not).
 */
struct aq_engine;

/* --- the runner loop and enqueue (lua/aqueue/run_queue.lua) --- */
int32_t aq__sched_class_add(struct aq_engine *E, const char *name);
int32_t aq__sched_enqueue(struct aq_engine *E, int32_t parent, int32_t class_id, double priority, int32_t flags,
                          double delay_s, int32_t limit_key, int32_t max_attempts);
int32_t aq__sched_take(struct aq_engine *E);
void aq__sched_process_done(struct aq_engine *E, int32_t id, int32_t ok);
void aq__sched_hook_done(struct aq_engine *E, int32_t id, int32_t ok);
int32_t aq__sched_reap(struct aq_engine *E);
int32_t aq__sched_reaped_count(struct aq_engine *E);
int32_t aq__sched_item_finished(struct aq_engine *E, int32_t id);
int32_t aq__sched_current_job(struct aq_engine *E);
int32_t aq__sched_stopping(struct aq_engine *E);
void aq__sched_set_desc(struct aq_engine *E, const char *text, size_t len);
void aq__sched_note_duplicate(struct aq_engine *E);
int32_t aq__sched_attempt(struct aq_engine *E, int32_t id);

/* --- retries and timeouts (sched_timers.c) --- */
/* Process failed: retry after a backoff (returns its seconds) or not (-1). */
double aq__sched_retry(struct aq_engine *E, int32_t id, double base_s, double cap_s);
/* Arms the running process()'s timeout. Returns 0, or -1 out of memory (the
 * attempt must then fail: nothing would end it). */
int32_t aq__sched_arm_timeout(struct aq_engine *E, double seconds);
/* Ends the running process()'s timeout: its seconds when it had passed, else 0. */
double aq__sched_timeout_over(struct aq_engine *E);

/* --- limit keys (sched_limits.c) --- */
int32_t aq__sched_limit_key_add(struct aq_engine *E, int32_t per_key, double rate);
/* The name of limit key `key` (its Item:limit_key() value as text), for the
 * idle workers' "waiting for rate (name)" (display.c). Called when run_queue
 * makes a key; kept until the run ends. Out of memory, the key stays
 * unnamed. */
void aq__display_key_name(struct aq_engine *E, int32_t key, const char *name, size_t len);

/* --- resuming from a state file (lua/aqueue/state.lua, run_queue.lua) --- */
int32_t aq__sched_restore_open(struct aq_engine *E, int32_t parent, int32_t class_id, int32_t flags);
void aq__sched_restore_release(struct aq_engine *E, int32_t id);
int32_t aq__sched_restore_attempts(struct aq_engine *E, int32_t id, int32_t attempts);
void aq__sched_add_overall_done(struct aq_engine *E, int64_t n);
void aq__sched_hold_open(struct aq_engine *E, int32_t parent);

/* --- a remote queue (lua/aqueue/run_remote.lua) --- */
/* The whole run's figures, all processes (display_set_shared_run). */
void aq__display_shared_run(struct aq_engine *E, int64_t processes, int64_t queued, int64_t running, int64_t done,
                            int64_t failed);
/* Holds the run open (+1) while the remote store has work this process has
 * not claimed yet; -1 lets it end. */
void aq__sched_hold_run(struct aq_engine *E, int32_t delta);
/* aq__sched_retry for an item of a remote queue: the store re-queues it after
 * the returned seconds; it leaves this process (-1: no attempt left). */
double aq__sched_retry_remote(struct aq_engine *E, int32_t id, double base_s, double cap_s);
/* The store hands out no more items (the whole run's max_items): this process
 * stops as max_items does once n items have started here, the ones it holds
 * included (at once when n already did). */
void aq__sched_stop_after_starts(struct aq_engine *E, int64_t n);
