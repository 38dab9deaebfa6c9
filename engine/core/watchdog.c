/*
 * watchdog.c — interrupting Lua code that does not yield (see watchdog.h).
 *
 * Who does what:
 *   the signal handler (any thread, async-signal-safe): counts SIGINT/SIGTERM,
 *     notes when one asks for an immediate stop, then calls libuv's handler;
 *   the watchdog thread: every TICK_NS looks at the shared fields and sets the
 *     count hook when the running resume needs attention; as the last resort,
 *     ends the process;
 *   the hook (loop thread, inside the resume): decides from the engine's own
 *     state, warns, and yields the task to interrupt it;
 *   the driver (loop thread, engine.c): marks each resume, clears the hook.
 * A hook set late (after the resume it was meant for) finds nothing to do and
 * clears itself, so the two threads need no tighter agreement than this.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "test_knobs.h"
#include "watchdog.h"

#define TICK_NS (100 * 1000 * 1000ull) /* how often the watchdog looks */
#define WARN_MS 1000                   /* a resume this long gets a warning (w->warn_ns) */
#define EXIT_GRACE_MS 1000             /* an unhandled stop signal waits this long (w->exit_grace_ns) */
/* Only a resume this long is interrupted. A shorter one yields soon by itself,
 * and the loop then handles the signal or fires the timeout at a point where
 * the task chose to wait: interrupting is for code that holds the loop. */
#define INTERRUPT_NS (200 * 1000 * 1000ull)
/* Interpreted Lua instructions between two hook calls. At once when set: in
 * code the JIT compiled, few instructions run in the interpreter (the hook's
 * only chance). Backed off while the task cannot yield where it is. */
#define HOOK_COUNT 1
#define HOOK_COUNT_BACKED_OFF 1000

/* The one watchdog of the process, for the signal handler; NULL when none. */
static aq_watchdog *_Atomic signal_target;
static struct sigaction chained_int, chained_term; /* libuv's handlers */

/* --- the hook (loop thread) --- */

static void clear_hook(aq_watchdog *w) {
  uv_mutex_lock(&w->hook_mu);
  lua_sethook(w->L, NULL, 0, 0);
  atomic_store(&w->hook_set, 0);
  uv_mutex_unlock(&w->hook_mu);
}

static void warn_long_resume(aq_watchdog *w, aq_task *t, uint64_t elapsed_ns) {
  char who[160], line[400];
  w->hooks.describe(w->hooks.data, t, who, sizeof who);
  int n = snprintf(line, sizeof line,
                   "aqueue: %s has run %.1f s without yielding: nothing else runs meanwhile "
                   "(give other tasks a turn with aqueue.sleep(0), or move the work to aqueue.work)",
                   who, (double)elapsed_ns / 1e9);
  if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
  w->hooks.log_now(w->hooks.data, line, (size_t)n); /* now: the loop may not draw again for a while */
}

/* Warns once per resume that has lasted warn_ns while others could run: a
 * script that only computes (the main chunk building its input before
 * run_queue) keeps nothing waiting, and is not warned about. */
static void check_warning(aq_watchdog *w, aq_task *t, uint64_t start, uint64_t now) {
  if (start && now - start >= w->warn_ns && atomic_load(&w->warned_seq) != w->seq &&
      w->hooks.others_could_run(w->hooks.data)) {
    atomic_store(&w->warned_seq, w->seq);
    warn_long_resume(w, t, now - start);
  }
}

/* The hook never ran in compiled code: warn when a job or the resume ends. */
void watchdog_job_ending(aq_watchdog *w, aq_task *t) {
  if (!atomic_load_explicit(&w->hook_set, memory_order_relaxed)) return;
  check_warning(w, t, atomic_load_explicit(&w->resume_start, memory_order_relaxed), uv_hrtime());
}

/* The function running at the hook is one of aqueue's own Lua modules. */
static int in_library(aq_watchdog *w, lua_State *L, lua_Debug *ar) {
  if (!w->library_len || !lua_getinfo(L, "S", ar) || !ar->source) return 0;
  return strncmp(ar->source, w->library, w->library_len) == 0;
}

static char watchdog_key; /* its address keys the watchdog in the Lua registry, for the hook */

static void on_hook(lua_State *L, lua_Debug *ar) {
  lua_pushlightuserdata(L, &watchdog_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  aq_watchdog *w = lua_touserdata(L, -1);
  lua_pop(L, 1);
  aq_task *t = w->tasks->current;
  uint64_t start = atomic_load_explicit(&w->resume_start, memory_order_relaxed);
  if (!t || !start) { /* set for a resume that has ended */
    clear_hook(w);
    return;
  }
  uint64_t now = uv_hrtime();
  check_warning(w, t, start, now);
  /* the running task's timeout (its job's, set by the scheduler) */
  uint64_t deadline = atomic_load_explicit(&w->deadline, memory_order_relaxed);
  int overdue = deadline && now >= deadline;
  int signalled = atomic_load(&w->signals_seen) != atomic_load(&w->signals_handled);
  if (!(overdue || signalled) || now - start < INTERRUPT_NS) {
    clear_hook(w); /* the watchdog sets it again if need be */
    return;
  }
  /* Only the task's own coroutine yields into the engine, and only where it
   * may (not in a table.sort comparator, not in a coroutine the script
   * made), and not inside aqueue's own Lua library, whose state changes
   * other tasks must never see half done: elsewhere the hook stays set and
   * tries again a little later. */
  if (in_library(w, L, ar)) return; /* it returns to the script's code soon */
  if (L != t->co || !lua_isyieldable(L)) {
    uv_mutex_lock(&w->hook_mu);
    lua_sethook(w->L, on_hook, LUA_MASKCOUNT, HOOK_COUNT_BACKED_OFF);
    uv_mutex_unlock(&w->hook_mu);
    return;
  }
  clear_hook(w);
  lua_yield(L, 0); /* LuaJIT resumes a hook's yield where it stopped */
}

/* --- the driver's marks (loop thread) --- */

void watchdog_resume_started(aq_watchdog *w, uint64_t deadline) {
  atomic_store_explicit(&w->resume_seq, ++w->seq, memory_order_relaxed);
  atomic_store_explicit(&w->deadline, deadline, memory_order_relaxed);
  atomic_store_explicit(&w->resume_start, uv_hrtime(), memory_order_release);
}

void watchdog_resume_ended(aq_watchdog *w, aq_task *t) {
  if (atomic_load_explicit(&w->hook_set, memory_order_relaxed)) {
    check_warning(w, t, atomic_load_explicit(&w->resume_start, memory_order_relaxed), uv_hrtime());
    clear_hook(w);
  }
  atomic_store_explicit(&w->resume_start, 0, memory_order_release);
}

void watchdog_set_deadline(aq_watchdog *w, uint64_t deadline) {
  atomic_store_explicit(&w->deadline, deadline, memory_order_relaxed);
}

void watchdog_signal_handled(aq_watchdog *w) { atomic_fetch_add(&w->signals_handled, 1); }

/* --- the signal handler (any thread) --- */

static void on_stop_signal(int signum, siginfo_t *info, void *context) {
  int saved_errno = errno;
  aq_watchdog *w = atomic_load(&signal_target);
  if (w) {
    /* The first Ctrl-C is a graceful stop; a second one, or SIGTERM, stops at once. */
    unsigned ints = 0;
    if (signum == SIGINT) ints = atomic_fetch_add(&w->sigints, 1) + 1;
    if (signum == SIGTERM || ints >= 2) {
      int none = 0;
      atomic_compare_exchange_strong(&w->exit_status, &none, signum == SIGINT ? 130 : 128 + signum);
    }
    atomic_fetch_add(&w->signals_seen, 1);
  }
  struct sigaction *next = signum == SIGINT ? &chained_int : &chained_term;
  if (next->sa_flags & SA_SIGINFO) next->sa_sigaction(signum, info, context);
  else if (next->sa_handler != SIG_DFL && next->sa_handler != SIG_IGN) next->sa_handler(signum);
  errno = saved_errno;
}

static int chain_handler(int signum, struct sigaction *chained) {
  struct sigaction sa;
  if (sigaction(signum, NULL, chained) != 0) return -1;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_stop_signal;
  sa.sa_flags = (chained->sa_flags & SA_RESTART) | SA_SIGINFO;
  sigfillset(&sa.sa_mask);
  return sigaction(signum, &sa, NULL);
}

/* --- the watchdog thread --- */

/* The loop has not handled a stop signal for exit_grace_ns: Lua code that the
 * hook cannot reach (a compiled loop) holds it. Give the terminal back and end
 * the process, as kill -9 would but with the status the signal asks for. Only
 * async-signal-safe calls from here on. */
static void exit_now(aq_watchdog *w, int status) {
  if (w->hooks.restore_terminal) w->hooks.restore_terminal();
  static const char msg[] = "aqueue: the running Lua code did not stop within a second "
                            "(a loop that never yields): exiting now\n";
  ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)n;
  _exit(status);
}

static void watch(void *arg) {
  aq_watchdog *w = arg;
  uint64_t unhandled_since = 0;
  uv_mutex_lock(&w->mu);
  while (!w->stop) {
    uv_cond_timedwait(&w->cond, &w->mu, TICK_NS); /* spurious wake-ups only look early */
    if (w->stop) break;
    uint64_t now = uv_hrtime();
    unsigned seen = atomic_load(&w->signals_seen);
    int unhandled = seen != atomic_load(&w->signals_handled);
    uint64_t start = atomic_load_explicit(&w->resume_start, memory_order_acquire);
    if (start && !atomic_load(&w->hook_set)) {
      uint64_t deadline = atomic_load_explicit(&w->deadline, memory_order_relaxed);
      uint64_t seq = atomic_load_explicit(&w->resume_seq, memory_order_relaxed);
      uint64_t ran = now - start;
      if ((ran >= INTERRUPT_NS && (unhandled || (deadline && now >= deadline))) ||
          (ran >= w->warn_ns && atomic_load(&w->warned_seq) != seq)) {
        uv_mutex_lock(&w->hook_mu);
        lua_sethook(w->L, on_hook, LUA_MASKCOUNT, HOOK_COUNT);
        atomic_store(&w->hook_set, 1);
        uv_mutex_unlock(&w->hook_mu);
      }
    }
    int status = atomic_load(&w->exit_status);
    if (status && unhandled) {
      if (!unhandled_since) unhandled_since = now;
      else if (now - unhandled_since >= w->exit_grace_ns) exit_now(w, status);
    } else {
      unhandled_since = 0;
    }
  }
  uv_mutex_unlock(&w->mu);
}

/* Where aqueue's Lua modules are, as their chunk names begin: "@" and the
 * first package.path entry (engine.c puts the library's folder first), with
 * "/aqueue/". Left empty when package.path does not look so. */
static void find_library(aq_watchdog *w, lua_State *L) {
  w->library_len = 0;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  const char *path = lua_tostring(L, -1);
  const char *end = path ? strstr(path, "/?.lua") : NULL;
  if (end && (size_t)(end - path) + 10 < sizeof w->library)
    w->library_len = (size_t)snprintf(w->library, sizeof w->library, "@%.*s/aqueue/", (int)(end - path), path);
  lua_pop(L, 2);
}

void watchdog_start(aq_watchdog *w, aq_tasks *T, const aq_watchdog_hooks *hooks) {
  w->L = T->L;
  w->tasks = T;
  w->hooks = *hooks;
  w->warn_ns = aq__test_knob_ms(AQ_TEST_NO_YIELD_WARN_MS, WARN_MS) * 1000000;
  w->exit_grace_ns = aq__test_knob_ms(AQ_TEST_EXIT_GRACE_MS, EXIT_GRACE_MS) * 1000000;
  lua_pushlightuserdata(w->L, &watchdog_key);
  lua_pushlightuserdata(w->L, w);
  lua_rawset(w->L, LUA_REGISTRYINDEX);
  find_library(w, w->L);
  if (uv_mutex_init(&w->hook_mu) != 0) goto failed;
  if (uv_mutex_init(&w->mu) != 0) goto failed_hook_mu;
  if (uv_cond_init(&w->cond) != 0) goto failed_mu;
  if (uv_thread_create(&w->thread, watch, w) != 0) goto failed_cond;
  w->running = 1;
  atomic_store(&signal_target, w);
  if (chain_handler(SIGINT, &chained_int) != 0 || chain_handler(SIGTERM, &chained_term) != 0)
    fprintf(stderr, "aqueue: cannot watch for signals (%s): Ctrl-C may not stop Lua code that never yields\n",
            strerror(errno));
  return;
failed_cond:
  uv_cond_destroy(&w->cond);
failed_mu:
  uv_mutex_destroy(&w->mu);
failed_hook_mu:
  uv_mutex_destroy(&w->hook_mu);
failed:
  fprintf(stderr, "aqueue: cannot start the watchdog thread: Lua code that never yields cannot be interrupted\n");
}

void watchdog_stop(aq_watchdog *w) {
  if (!w->running) return;
  w->running = 0;
  /* libuv's handlers back first (they stay until its signal handles close). */
  struct sigaction current;
  if (sigaction(SIGINT, NULL, &current) == 0 && current.sa_sigaction == on_stop_signal)
    sigaction(SIGINT, &chained_int, NULL);
  if (sigaction(SIGTERM, NULL, &current) == 0 && current.sa_sigaction == on_stop_signal)
    sigaction(SIGTERM, &chained_term, NULL);
  atomic_store(&signal_target, NULL);
  uv_mutex_lock(&w->mu);
  w->stop = 1;
  uv_cond_signal(&w->cond);
  uv_mutex_unlock(&w->mu);
  uv_thread_join(&w->thread);
  uv_cond_destroy(&w->cond);
  uv_mutex_destroy(&w->mu);
  if (atomic_load(&w->hook_set)) lua_sethook(w->L, NULL, 0, 0);
  uv_mutex_destroy(&w->hook_mu);
}
