/*
 * text_width.h — how many terminal columns a UTF-8 text takes, and cutting it
 * to a number of columns, for the live display (display_render.c).
 *
 * The rules are wcwidth's, from our own tables rather than the process locale
 * (which may be C): East Asian Wide and Fullwidth characters (CJK, most emoji)
 * take 2 columns, combining marks and other zero-width characters 0, the rest
 * 1. Control characters are replaced by a space, and bytes that are not valid
 * UTF-8 by U+FFFD (one per byte), so what is written takes exactly the
 * columns counted. A text is never cut inside a UTF-8 sequence, and the
 * combining marks of the last character kept stay with it.
 */
#ifndef AQ_TEXT_WIDTH_H
#define AQ_TEXT_WIDTH_H

#include <stddef.h>
#include <stdint.h>

#include "aqueue.h"

/* Decodes the UTF-8 sequence at s (n > 0 bytes available) into *cp; returns
 * its length. A byte that does not start a valid, shortest-form sequence (or a
 * sequence cut short by n) returns 1 with *cp = 0xFFFD. */
size_t tw_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Columns of one code point: 0, 1 or 2; -1 for a control character (C0, DEL,
 * C1), which the display replaces. */
int tw_codepoint_width(uint32_t cp);

/* Columns the text takes as tw_put_clipped writes it uncut (`utf8` 0: every
 * non-ASCII character that is not zero-width becomes one '?'). */
int tw_text_width(const char *s, size_t len, int utf8);

/* Appends the text cut to at most `cols` columns to b and returns the columns
 * written. A text that does not fit ends with an ellipsis ("…", or "~" when
 * `utf8` is 0) in its last column; when a double-width character does not fit
 * before it, the result takes one column less than `cols` (the caller pads).
 * Control characters are written as spaces, invalid UTF-8 as U+FFFD ("?" when
 * `utf8` is 0). */
int tw_put_clipped(aq_buf *b, const char *s, size_t len, int cols, int utf8);

#endif
