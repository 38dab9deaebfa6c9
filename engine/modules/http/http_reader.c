/*
 * http_reader.c — reads an HTTP/1.x response as it arrives, in pieces of any
 * size: the status line and the header block, then the body framed by
 * Content-Length, by chunks (Transfer-Encoding: chunked, trailers skipped)
 * or by the end of the connection. For http_wire.c, which feeds it what the
 * socket gives; no I/O here.
 *
 * Interim responses (1xx other than 101) are skipped, as curl skips them.
 * The framing follows RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and
 * 304; chunked wins over Content-Length; without either the body runs to
 * the end of the connection, which is then not reused. Failures carry
 * curl's code and words, so a request reads the same whichever path served it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"

#define MAX_HEAD (100 * 1024) /* curl's limit on a response's headers */
#define MAX_LINE 1024         /* a chunk-size line or a trailer */

enum { R_HEAD, R_LENGTH, R_CHUNK_SIZE, R_CHUNK_DATA, R_CHUNK_END, R_TRAILERS, R_UNTIL_CLOSE, R_DONE };

void http_reader_start(http_reader *rd, int head_only) {
  aq_buf kept = rd->line; /* its memory serves the next response too */
  aq_buf_reset(&kept);
  memset(rd, 0, sizeof *rd);
  rd->line = kept;
  rd->head_only = head_only;
  rd->state = R_HEAD;
}

void http_reader_free(http_reader *rd) { aq_buf_free(&rd->line); }

int http_reader_done(const http_reader *rd) { return rd->state == R_DONE; }

int http_reader_fail(http_reader *rd, CURLcode code, const char *words) {
  rd->code = code;
  snprintf(rd->words, sizeof rd->words, "%s", words);
  return -1;
}

/* Does the comma-separated value [v, end) hold token (any case)? */
static int has_token(const char *v, const char *end, const char *token) {
  size_t n = strlen(token);
  while (v < end) {
    while (v < end && (*v == ' ' || *v == '\t' || *v == ',')) v++;
    const char *start = v;
    while (v < end && *v != ',') v++;
    const char *stop = v;
    while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t')) stop--;
    if ((size_t)(stop - start) == n && strncasecmp(start, token, n) == 0) return 1;
  }
  return 0;
}

/* Is the last coding of a Transfer-Encoding value [v, end) "chunked"? */
static int ends_chunked(const char *v, const char *end) {
  while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
  const char *start = end;
  while (start > v && start[-1] != ',' && start[-1] != ' ' && start[-1] != '\t') start--;
  return end - start == 7 && strncasecmp(start, "chunked", 7) == 0;
}

/* The framing of a complete head [h, h + len) (status line to blank line). */
static int read_head(http_reader *rd, const char *h, size_t len, const http_reader_calls *calls, void *ud) {
  const char *end = h + len, *eol = memchr(h, '\n', len);
  if (len < 5 || memcmp(h, "HTTP/", 5) != 0)
    return http_reader_fail(rd, CURLE_UNSUPPORTED_PROTOCOL, "Received HTTP/0.9 when not allowed");
  if (eol - h < 12 || memcmp(h + 5, "1.", 2) != 0 || (h[7] != '0' && h[7] != '1') || h[8] != ' ' ||
      h[9] < '1' || h[9] > '5' || h[10] < '0' || h[10] > '9' || h[11] < '0' || h[11] > '9' ||
      (eol - h > 12 && h[12] != ' ' && h[12] != '\r'))
    return http_reader_fail(rd, CURLE_WEIRD_SERVER_REPLY, "Invalid status line");
  rd->minor = h[7] - '0';
  rd->status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
  const char *lines = eol + 1;
  int chunked = 0, close = 0, keep_alive = 0, has_length = 0;
  int64_t length = 0;
  for (const char *p = lines; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *next = nl ? nl + 1 : end, *stop = nl ? nl : end;
    if (stop > p && stop[-1] == '\r') stop--;
    const char *colon = memchr(p, ':', (size_t)(stop - p));
    if (colon) {
      size_t n = (size_t)(colon - p);
      const char *v = colon + 1;
      while (v < stop && (*v == ' ' || *v == '\t')) v++;
      if (n == 14 && strncasecmp(p, "content-length", 14) == 0) {
        int64_t x = 0;
        const char *d = v;
        while (d < stop && *d >= '0' && *d <= '9' && x < ((int64_t)1 << 56)) x = x * 10 + (*d++ - '0');
        while (d < stop && (*d == ' ' || *d == '\t')) d++;
        if (d == v || d != stop || (has_length && x != length))
          return http_reader_fail(rd, CURLE_WEIRD_SERVER_REPLY, "Invalid Content-Length: value");
        has_length = 1;
        length = x;
      } else if (n == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
        chunked = ends_chunked(v, stop);
      } else if (n == 10 && strncasecmp(p, "connection", 10) == 0) {
        close |= has_token(v, stop, "close");
        keep_alive |= has_token(v, stop, "keep-alive");
      }
    }
    p = next;
  }
  if (rd->status < 200 && rd->status != 101) return 0; /* interim: the real response follows */
  rd->keep_alive = !close && (rd->minor == 1 || keep_alive) && rd->status != 101;
  rd->content_length = has_length && !chunked ? length : -1;
  size_t lines_len = (size_t)(end - lines);
  /* the header lines without the blank line that ends them */
  if (lines_len >= 2 && end[-2] == '\r') lines_len -= 2;
  else if (lines_len >= 1) lines_len -= 1;
  if (calls->head(ud, rd, lines, lines_len) != 0) return -1;
  if (rd->head_only || rd->status == 204 || rd->status == 304 || rd->status == 101) {
    rd->state = R_DONE;
  } else if (chunked) {
    rd->state = R_CHUNK_SIZE;
  } else if (has_length) {
    rd->left = length;
    rd->state = length > 0 ? R_LENGTH : R_DONE;
  } else {
    rd->keep_alive = 0;
    rd->state = R_UNTIL_CLOSE;
  }
  return 0;
}

/* Where a head that starts at p ends: just after its blank line, searched
 * from `from`; 0 while it has not arrived. */
static size_t head_end(const char *p, size_t n, size_t from) {
  for (size_t i = from; i < n; i++) {
    const char *nl = memchr(p + i, '\n', n - i);
    if (!nl) return 0;
    i = (size_t)(nl - p);
    if (i + 1 < n && p[i + 1] == '\n') return i + 2;
    if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') return i + 3;
  }
  return 0;
}

/* The next line ("\n"-ended) of a line state: points *line at it (in data,
 * or in rd->line when it came in pieces) and returns the bytes of data it
 * took; or takes all of data into rd->line and sets *line to NULL. */
static size_t take_line(http_reader *rd, const char *data, size_t n, const char **line, size_t *len) {
  const char *nl = memchr(data, '\n', n);
  if (!nl) {
    aq_buf_add(&rd->line, data, n);
    *line = NULL;
    return n;
  }
  size_t used = (size_t)(nl - data) + 1;
  if (rd->line.len == 0) {
    *line = data;
    *len = used;
  } else {
    aq_buf_add(&rd->line, data, used);
    *line = rd->line.data;
    *len = rd->line.len;
  }
  return used;
}

/* A chunk-size line: its hex size (extensions after ';' ignored). */
static int read_chunk_size(http_reader *rd, const char *line, size_t len) {
  int64_t size = 0;
  size_t i = 0;
  for (; i < len; i++) {
    char c = line[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) break;
    if (size >= ((int64_t)1 << 56)) return http_reader_fail(rd, CURLE_RECV_ERROR, "Malformed encoding found in chunked-encoding");
    size = size * 16 + d;
  }
  if (i == 0 || (line[i] != ';' && line[i] != '\r' && line[i] != '\n' && line[i] != ' ' && line[i] != '\t'))
    return http_reader_fail(rd, CURLE_RECV_ERROR, "Malformed encoding found in chunked-encoding");
  rd->left = size;
  rd->state = size > 0 ? R_CHUNK_DATA : R_TRAILERS;
  return 0;
}

long http_reader_feed(http_reader *rd, const char *data, size_t n, const http_reader_calls *calls, void *ud) {
  size_t at = 0;
  while (at < n && rd->state != R_DONE) {
    const char *p = data + at;
    size_t left = n - at;
    switch (rd->state) {
    case R_HEAD: {
      size_t end;
      if (rd->line.len == 0 && (end = head_end(p, left, 0)) > 0) { /* all here: read in place */
        at += end;
        if (read_head(rd, p, end, calls, ud) != 0) return -1;
        break;
      }
      size_t had = rd->line.len;
      aq_buf_add(&rd->line, p, left);
      if (rd->line.failed) return http_reader_fail(rd, CURLE_OUT_OF_MEMORY, "out of memory");
      end = head_end(rd->line.data, rd->line.len, had >= 3 ? had - 3 : 0);
      if (end == 0) {
        if (rd->line.len > MAX_HEAD) return http_reader_fail(rd, CURLE_RECV_ERROR, "Too large response headers");
        at = n;
        break;
      }
      at += end - had;
      int rc = read_head(rd, rd->line.data, end, calls, ud);
      aq_buf_reset(&rd->line);
      if (rc != 0) return -1;
      break;
    }
    case R_LENGTH:
    case R_CHUNK_DATA:
    case R_UNTIL_CLOSE: {
      size_t take = left;
      if (rd->state != R_UNTIL_CLOSE && (int64_t)take > rd->left) take = (size_t)rd->left;
      at += take;
      if (calls->body(ud, p, take) != 0) return -1;
      if (rd->state == R_UNTIL_CLOSE) break;
      rd->left -= (int64_t)take;
      if (rd->left == 0) rd->state = rd->state == R_LENGTH ? R_DONE : R_CHUNK_END;
      break;
    }
    case R_CHUNK_SIZE:
    case R_CHUNK_END:
    case R_TRAILERS: {
      const char *line;
      size_t len = 0;
      at += take_line(rd, p, left, &line, &len);
      if (!line) {
        if (rd->line.len > MAX_LINE) return http_reader_fail(rd, CURLE_RECV_ERROR, "Malformed encoding found in chunked-encoding");
        break;
      }
      int blank = len == 1 || (len == 2 && line[0] == '\r');
      int rc = 0;
      if (rd->state == R_CHUNK_SIZE) rc = read_chunk_size(rd, line, len);
      else if (rd->state == R_CHUNK_END && !blank)
        rc = http_reader_fail(rd, CURLE_RECV_ERROR, "Malformed encoding found in chunked-encoding");
      else if (rd->state == R_CHUNK_END) rd->state = R_CHUNK_SIZE;
      else if (blank) rd->state = R_DONE; /* (a trailer line is skipped) */
      aq_buf_reset(&rd->line);
      if (rc != 0) return -1;
      break;
    }
    }
  }
  return (long)at;
}

int http_reader_eof(http_reader *rd) {
  switch (rd->state) {
  case R_DONE:
    return 0;
  case R_UNTIL_CLOSE:
    rd->state = R_DONE;
    return 0;
  case R_HEAD:
    if (rd->line.len == 0) return http_reader_fail(rd, CURLE_GOT_NOTHING, "Empty reply from server");
    return http_reader_fail(rd, CURLE_RECV_ERROR, "Connection closed in the response's headers");
  case R_LENGTH:
    rd->code = CURLE_PARTIAL_FILE;
    snprintf(rd->words, sizeof rd->words, "transfer closed with %lld bytes remaining to read",
             (long long)rd->left);
    return -1;
  default:
    return http_reader_fail(rd, CURLE_PARTIAL_FILE, "transfer closed with outstanding read data remaining");
  }
}
