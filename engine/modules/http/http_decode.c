/*
 * http_decode.c — a response body's Content-Encoding undone as it arrives,
 * for http_wire.c (curl does its own): gzip and deflate with zlib, br with
 * libbrotlidec, the codings http_wire.c offers in Accept-Encoding.
 *
 * "deflate" is meant to be the zlib format (RFC 9110 8.4.1.2), but some
 * servers send raw deflate: like curl, a stream that is not zlib from its
 * first bytes is read again as raw deflate.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <brotli/decode.h>
#include <zlib.h>

#include "http.h"

enum { DECODE_NONE, DECODE_ZLIB, DECODE_BROTLI };

struct http_decoder {
  int kind;
  int raw_tried; /* deflate read again as raw deflate */
  int any_out;   /* inflate has produced something */
  z_stream z;
  BrotliDecoderState *br;
};

static int is(const char *v, size_t n, const char *name) {
  return strlen(name) == n && strncasecmp(v, name, n) == 0;
}

int http_decoder_new(const char *coding, size_t len, http_decoder **out) {
  *out = NULL;
  while (len > 0 && (coding[len - 1] == ' ' || coding[len - 1] == '\t')) len--;
  if (len == 0 || is(coding, len, "identity")) return 0;
  int kind = is(coding, len, "gzip") || is(coding, len, "x-gzip") || is(coding, len, "deflate") ? DECODE_ZLIB
             : is(coding, len, "br")                                                             ? DECODE_BROTLI
                                                                                                 : -1;
  if (kind < 0) return -1;
  http_decoder *d = calloc(1, sizeof *d);
  if (!d) return -2;
  d->kind = kind;
  if (kind == DECODE_ZLIB) {
    if (inflateInit2(&d->z, 15 + 32) != Z_OK) { /* 15 + 32: a zlib or a gzip header, either */
      free(d);
      return -2;
    }
  } else {
    d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    if (!d->br) {
      free(d);
      return -2;
    }
  }
  *out = d;
  return 0;
}

void http_decoder_free(http_decoder *d) {
  if (!d) return;
  if (d->kind == DECODE_ZLIB) inflateEnd(&d->z);
  else BrotliDecoderDestroyInstance(d->br);
  free(d);
}

static int inflate_some(http_decoder *d, const char *in, size_t n, http_decoded_cb out, void *ud) {
  unsigned char buf[16384];
  d->z.next_in = (Bytef *)(uintptr_t)in;
  d->z.avail_in = (uInt)n;
  for (;;) {
    d->z.next_out = buf;
    d->z.avail_out = sizeof buf;
    int rc = inflate(&d->z, Z_NO_FLUSH);
    if (rc == Z_DATA_ERROR && !d->any_out && !d->raw_tried) { /* not zlib: raw deflate? */
      d->raw_tried = 1;
      const Bytef *again = (const Bytef *)in;
      inflateEnd(&d->z);
      memset(&d->z, 0, sizeof d->z);
      if (inflateInit2(&d->z, -15) != Z_OK) return -2;
      d->z.next_in = (Bytef *)(uintptr_t)again;
      d->z.avail_in = (uInt)n;
      continue;
    }
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return -1;
    size_t got = sizeof buf - d->z.avail_out;
    if (got > 0) {
      d->any_out = 1;
      if (out(ud, (const char *)buf, got) != 0) return -2;
    }
    if (rc == Z_STREAM_END) return 0; /* (anything after the stream is left, as curl does) */
    if (d->z.avail_out > 0 || (rc == Z_BUF_ERROR && got == 0)) return 0; /* all in is out */
  }
}

static int unbrotli_some(http_decoder *d, const char *in, size_t n, http_decoded_cb out, void *ud) {
  unsigned char buf[16384];
  const uint8_t *next_in = (const uint8_t *)in;
  size_t avail_in = n;
  for (;;) {
    uint8_t *next_out = buf;
    size_t avail_out = sizeof buf;
    BrotliDecoderResult rc = BrotliDecoderDecompressStream(d->br, &avail_in, &next_in, &avail_out, &next_out, NULL);
    size_t got = sizeof buf - avail_out;
    if (rc == BROTLI_DECODER_RESULT_ERROR) return -1;
    if (got > 0 && out(ud, (const char *)buf, got) != 0) return -2;
    if (rc != BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) return 0;
  }
}

int http_decoder_run(http_decoder *d, const char *in, size_t n, http_decoded_cb out, void *ud) {
  if (n == 0) return 0;
  return d->kind == DECODE_ZLIB ? inflate_some(d, in, n, out, ud) : unbrotli_some(d, in, n, out, ud);
}
