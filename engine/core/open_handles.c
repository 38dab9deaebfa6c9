/*
 * open_handles.c — reports the handles left open when the loop closes, then
 * closes them (see open_handles.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "open_handles.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define AQ_HAVE_ASAN 1
#endif

int open_handles_strict(void) {
  const char *v = getenv("AQUEUE_STRICT_CLOSE");
  if (v && *v) return strcmp(v, "0") != 0;
#ifdef AQUEUE_DEBUG
  return 1;
#else
  return 0;
#endif
}

static void report_and_close(uv_handle_t *handle, void *arg) {
  if (uv_is_closing(handle)) return; /* its owner closed it: its close callback is due */
  int *count = arg;
  (*count)++;
  fprintf(stderr, "aqueue: handle left open at exit: %s %p (%s, %s)\n",
          uv_handle_type_name(uv_handle_get_type(handle)), (void *)handle,
          uv_is_active(handle) ? "active" : "inactive", uv_has_ref(handle) ? "referenced" : "unreferenced");
#ifdef AQ_HAVE_ASAN
  /* Its owner: where the memory holding it was allocated. */
  __asan_describe_address(handle);
#endif
  /* Its owner's close callback is unknown: no memory is freed, only the loop
   * forgets the handle. */
  uv_close(handle, NULL);
}

int open_handles_close_loop(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT); /* the close callbacks of what the owners closed */
  int problems = 0;
  uv_walk(loop, report_and_close, &problems);
  uv_run(loop, UV_RUN_DEFAULT);
  int err = uv_loop_close(loop);
  if (err) {
    fprintf(stderr, "aqueue: the event loop did not close at exit: %s\n", uv_strerror(err));
    problems++;
  }
  return problems;
}
