/*
 * sched_runner.c — the life of a runner record (sched_runner.h).
 */
#include <stdlib.h>
#include <string.h>

#include "sched_runner.h"

aq_runner *runner_new(void *sched) {
  aq_runner *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->sched = sched;
  r->slot = -1;
  return r;
}

void runner_attach(aq_runner *r, aq_task *t) {
  r->task = t;
  t->owner_data = r;
}

static void free_closed_timer(uv_handle_t *handle) { free(handle); }

void runner_free(aq_runner *r) {
  if (r->timeout_timer) uv_close((uv_handle_t *)r->timeout_timer, free_closed_timer);
  if (r->task) r->task->owner_data = NULL;
  free(r->desc);
  free(r);
}

void runner_set_desc(aq_runner *r, const char *text, size_t len) {
  if (len + 1 > r->desc_cap) {
    size_t cap = len + 1 < 64 ? 64 : len + 1;
    char *d = realloc(r->desc, cap);
    if (!d) return; /* the worker row keeps its old text */
    r->desc = d;
    r->desc_cap = cap;
  }
  memcpy(r->desc, text, len);
  r->desc[len] = '\0';
  r->desc_len = len;
}
