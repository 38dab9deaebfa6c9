/*
 * alloc_fail.c — allocation-failure injection, for the test flavour
 * (aqueue-run-asan) only.
 *
 * That flavour is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 * --wrap=strdup,--wrap=strndup: the calls made by the engine's own object
 * files come here; libuv's, LuaJIT's, SQLite's and libc's own calls do not
 * (they are shared libraries). The http module (a .so) is linked with the
 * same flags and reaches these through aqueue-run's exported symbols.
 *
 *   AQUEUE_FAIL_ALLOC=N      the Nth call (counted from 1, over every thread)
 *                            returns NULL, once; every other call succeeds
 *   AQUEUE_FAIL_ALLOC=count  nothing fails; at exit, prints on stderr
 *                            "aqueue: allocations: TOTAL"
 *   AQUEUE_FAIL_ALLOC_TRACE=1  with N: prints the stack of the failing call
 *                            (to find which branch a run took); with count:
 *                            the stack of every call (the allocation sites a
 *                            run reaches, to compare two runs)
 * Without the variable the wrappers only forward (one relaxed load).
 *
 * tests/alloc_fail.sh runs a representative script for N = 1..TOTAL and
 * checks that each ends cleanly: success, or an "out of memory" error.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static _Atomic int enabled;          /* 0 off, 1 fail call `fail_at`, 2 count only */
static unsigned long fail_at;        /* set before main, read-only after */
static _Atomic unsigned long calls;  /* calls counted so far */
static int trace;                    /* AQUEUE_FAIL_ALLOC_TRACE=1 */

static void print_count(void) {
  fprintf(stderr, "aqueue: allocations: %lu\n", atomic_load(&calls));
}

__attribute__((constructor)) static void read_env(void) {
  const char *v = getenv("AQUEUE_FAIL_ALLOC");
  if (!v || !*v) return;
  const char *t = getenv("AQUEUE_FAIL_ALLOC_TRACE");
  trace = t && strcmp(t, "1") == 0;
  if (strcmp(v, "count") == 0) {
    atexit(print_count);
    atomic_store(&enabled, 2);
    return;
  }
  fail_at = strtoul(v, NULL, 10);
  if (fail_at > 0) atomic_store(&enabled, 1);
}

/* 1 when this call is the one that fails. */
static int fails_now(void) {
  int mode = atomic_load_explicit(&enabled, memory_order_relaxed);
  if (mode == 0) return 0;
  unsigned long n = atomic_fetch_add(&calls, 1) + 1;
  int fails = mode == 1 && n == fail_at;
#if defined(__SANITIZE_ADDRESS__)
  if (trace && (fails || mode == 2)) {
    fprintf(stderr, "aqueue: allocation %lu %s here:\n", n, fails ? "fails" : "is made");
    __sanitizer_print_stack_trace();
  }
#endif
  return fails;
}

void *__wrap_malloc(size_t size) { return fails_now() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { return fails_now() ? NULL : __real_calloc(n, size); }
/* A failed realloc leaves `p` as it was, as the real one does. */
void *__wrap_realloc(void *p, size_t size) { return fails_now() ? NULL : __real_realloc(p, size); }
char *__wrap_strdup(const char *s) { return fails_now() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fails_now() ? NULL : __real_strndup(s, n); }
