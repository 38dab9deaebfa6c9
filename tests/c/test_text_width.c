/*
 * test_text_width.c — unit tests of engine/core/text_width.h: decoding (invalid and
 * overlong sequences, surrogates, truncated input), the width of ASCII, CJK,
 * emoji, combining marks, zero-width and control characters, and cutting a
 * text to a number of columns: never inside a UTF-8 sequence, never past the
 * columns asked, wide characters that do not fit, combining marks kept with
 * their character, invalid bytes replaced by U+FFFD. Prints one line per
 * check and a count; exits 1 on a failure.
 */
#include <stdio.h>
#include <string.h>

#include "text_width.h"
#include "check.h"


static int width_of(const char *s) { return tw_text_width(s, strlen(s), 1); }

/* s with control bytes as \xNN, for a check's description (one buffer per slot). */
static const char *shown(const char *s, size_t len, int slot) {
  static char out[2][512];
  size_t n = 0;
  for (size_t i = 0; i < len && n + 5 < sizeof out[slot]; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) n += (size_t)snprintf(out[slot] + n, sizeof out[slot] - n, "\\x%02x", c);
    else out[slot][n++] = (char)c;
  }
  out[slot][n] = 0;
  return out[slot];
}

/* Cuts s to cols columns; checks the text written and the columns returned. */
static void check_clip(const char *s, int cols, int utf8, const char *want, int want_cols) {
  aq_buf b = {0};
  int got = tw_put_clipped(&b, s, strlen(s), cols, utf8);
  aq_buf_add(&b, "", 0);
  int same = b.len == strlen(want) && (b.len == 0 || memcmp(b.data, want, b.len) == 0);
  check(same && got == want_cols, "clip [%s] to %d cols (utf8 %d): [%s] %d cols, want [%s] %d", shown(s, strlen(s), 0),
        cols, utf8, shown(b.data ? b.data : "", b.len, 1), got, want, want_cols);
  /* Whatever was cut, what was written is valid UTF-8 and takes `got` columns. */
  if (utf8) {
    int valid = 1;
    for (size_t i = 0; i < b.len;) {
      uint32_t cp;
      size_t n = tw_decode((const unsigned char *)b.data + i, b.len - i, &cp);
      if (cp == 0xfffd && n == 1) valid = 0;
      i += n;
    }
    check(valid, "  the cut text is valid UTF-8");
    check(tw_text_width(b.data ? b.data : "", b.len, 1) == got, "  the cut text takes the columns returned (%d)", got);
  }
  aq_buf_free(&b);
}

static void test_decode(void) {
  uint32_t cp;
  const unsigned char e_acute[] = {0xc3, 0xa9};
  check(tw_decode(e_acute, 2, &cp) == 2 && cp == 0xe9, "decode: 2-byte U+00E9");
  const unsigned char han[] = {0xe6, 0xbc, 0xa2};
  check(tw_decode(han, 3, &cp) == 3 && cp == 0x6f22, "decode: 3-byte U+6F22");
  const unsigned char grin[] = {0xf0, 0x9f, 0x98, 0x80};
  check(tw_decode(grin, 4, &cp) == 4 && cp == 0x1f600, "decode: 4-byte U+1F600");
  check(tw_decode(han, 2, &cp) == 1 && cp == 0xfffd, "decode: a sequence cut short is one invalid byte");
  const unsigned char cont[] = {0x80};
  check(tw_decode(cont, 1, &cp) == 1 && cp == 0xfffd, "decode: a lone continuation byte is invalid");
  const unsigned char overlong[] = {0xc0, 0xaf};
  check(tw_decode(overlong, 2, &cp) == 1 && cp == 0xfffd, "decode: overlong 2-byte (C0 AF) is invalid");
  const unsigned char overlong3[] = {0xe0, 0x80, 0xaf};
  check(tw_decode(overlong3, 3, &cp) == 1 && cp == 0xfffd, "decode: overlong 3-byte is invalid");
  const unsigned char surrogate[] = {0xed, 0xa0, 0x80};
  check(tw_decode(surrogate, 3, &cp) == 1 && cp == 0xfffd, "decode: a surrogate (U+D800) is invalid");
  const unsigned char too_big[] = {0xf4, 0x90, 0x80, 0x80};
  check(tw_decode(too_big, 4, &cp) == 1 && cp == 0xfffd, "decode: above U+10FFFF is invalid");
  const unsigned char ff[] = {0xff};
  check(tw_decode(ff, 1, &cp) == 1 && cp == 0xfffd, "decode: 0xFF is invalid");
  const unsigned char bad_cont[] = {0xe6, 0x41, 0x41};
  check(tw_decode(bad_cont, 3, &cp) == 1 && cp == 0xfffd, "decode: a lead byte followed by ASCII is one invalid byte");
}

static void test_widths(void) {
  check(tw_codepoint_width('a') == 1, "width: ASCII letter 1");
  check(tw_codepoint_width(0xe9) == 1, "width: U+00E9 1");
  check(tw_codepoint_width(0x6f22) == 2, "width: CJK U+6F22 2");
  check(tw_codepoint_width(0xff21) == 2, "width: fullwidth A (U+FF21) 2");
  check(tw_codepoint_width(0xac00) == 2, "width: Hangul syllable U+AC00 2");
  check(tw_codepoint_width(0x1f600) == 2, "width: emoji U+1F600 2");
  check(tw_codepoint_width(0x1f680) == 2, "width: emoji U+1F680 2");
  check(tw_codepoint_width(0x0301) == 0, "width: combining acute U+0301 0");
  check(tw_codepoint_width(0x20dd) == 0, "width: combining enclosing circle U+20DD 0");
  check(tw_codepoint_width(0x200b) == 0, "width: zero width space 0");
  check(tw_codepoint_width(0x200d) == 0, "width: zero width joiner 0");
  check(tw_codepoint_width(0xfe0f) == 0, "width: variation selector 16 0");
  check(tw_codepoint_width(0x1160) == 0, "width: Hangul jungseong filler 0");
  check(tw_codepoint_width(0xad) == 1, "width: soft hyphen 1");
  check(tw_codepoint_width('\t') == -1 && tw_codepoint_width(0x1b) == -1 && tw_codepoint_width(0x7f) == -1 &&
            tw_codepoint_width(0x9b) == -1,
        "width: control characters (TAB, ESC, DEL, CSI) -1");
  check(tw_codepoint_width(0x2e800) == 2, "width: unassigned plane 3 / CJK ext 2");
  check(tw_codepoint_width(0xfffd) == 1, "width: U+FFFD 1");
  check(width_of("abc") == 3, "text: abc 3");
  check(width_of("漢字") == 4, "text: two CJK 4");
  check(width_of("e\xcc\x81") == 1, "text: e + combining acute 1");
  check(width_of("a\tb") == 3, "text: a TAB b 3 (the TAB is one space)");
  check(width_of("\xff\xfe") == 2, "text: two invalid bytes 2 (two U+FFFD)");
  check(tw_text_width("漢é", strlen("漢é"), 0) == 2, "text without UTF-8: one '?' per character 2");
  check(tw_text_width("e\xcc\x81", 3, 0) == 1, "text without UTF-8: combining mark dropped 1");
}

static void test_clip(void) {
  check_clip("hello", 10, 1, "hello", 5);
  check_clip("hello", 5, 1, "hello", 5);
  check_clip("hello world", 5, 1, "hell…", 5);
  check_clip("漢字漢字", 8, 1, "漢字漢字", 8);
  check_clip("漢字漢字", 7, 1, "漢字漢…", 7);
  check_clip("漢字漢字", 6, 1, "漢字…", 5); /* the third does not fit before the ellipsis */
  check_clip("漢字漢字", 2, 1, "…", 1);
  check_clip("a😀b", 4, 1, "a😀b", 4);
  check_clip("a😀bcd", 4, 1, "a😀…", 4);
  check_clip("ab😀cd", 4, 1, "ab…", 3);
  check_clip("e\xcc\x81" "e\xcc\x81" "e\xcc\x81", 3, 1, "e\xcc\x81" "e\xcc\x81" "e\xcc\x81", 3);
  check_clip("e\xcc\x81" "e\xcc\x81" "e\xcc\x81" "x", 3, 1, "e\xcc\x81" "e\xcc\x81" "…", 3);
  check_clip("a\xff" "b", 5, 1, "a\xef\xbf\xbd" "b", 3);
  check_clip("a\xe6\xbc", 5, 1, "a\xef\xbf\xbd\xef\xbf\xbd", 3); /* a cut sequence: each byte replaced */
  check_clip("a\nb\033c", 10, 1, "a b c", 5);
  check_clip("\xc2\x9b" "x", 10, 1, " x", 2); /* C1 control CSI */
  check_clip("漢字 hello", 6, 0, "?? he~", 6);
  check_clip("x", 0, 1, "", 0);
  check_clip("abc", 1, 1, "…", 1);
}

int main(void) {
  test_decode();
  test_widths();
  test_clip();
  return check_summary();
}
