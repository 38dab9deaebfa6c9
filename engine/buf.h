/*
 * buf.h — a growable byte buffer for building output (a display frame, a JSON
 * line) before writing it with one write(). Appends never fail loudly: when
 * memory runs out the buffer is marked `failed` and the frame is skipped.
 */
#ifndef AQ_BUF_H
#define AQ_BUF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *data;
  size_t len, cap;
  int failed;
} aq_buf;

static inline int buf_reserve(aq_buf *b, size_t more) {
  if (b->failed) return -1;
  if (b->len + more <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + more) cap *= 2;
  char *d = realloc(b->data, cap);
  if (!d) {
    b->failed = 1;
    return -1;
  }
  b->data = d;
  b->cap = cap;
  return 0;
}

static inline void buf_add(aq_buf *b, const char *s, size_t n) {
  if (n == 0) return; /* memcpy must not see the NULL data of an empty buffer */
  if (buf_reserve(b, n) == 0) {
    memcpy(b->data + b->len, s, n);
    b->len += n;
  }
}

static inline void buf_puts(aq_buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static inline void buf_printf(aq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void buf_printf(aq_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    buf_add(b, small, (size_t)n);
    return;
  }
  if (buf_reserve(b, (size_t)n + 1) != 0) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static inline void buf_reset(aq_buf *b) {
  b->len = 0;
  b->failed = 0;
}

static inline void buf_free(aq_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

#endif
