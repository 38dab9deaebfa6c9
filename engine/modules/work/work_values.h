/*
 * work_values.h — the plain values aqueue.work sends between the loop
 * thread's Lua state and a pool thread's: written into a byte buffer on one
 * side, rebuilt in the other state. Only nil, booleans, numbers, strings and
 * tables of those can cross; metatables are not copied, a table reached twice
 * is copied twice, a cycle is refused.
 *
 * Wire format (native byte order; both ends are this process):
 *   value  = TAG_NIL | TAG_FALSE | TAG_TRUE | TAG_NUMBER double
 *          | TAG_STRING u64-length bytes
 *          | TAG_TABLE u32-narr u32-nhash value{narr} (key value){nhash}
 * The caller frames values with counts (work_put_u32) and the function's
 * bytecode (work_put_u64 length, bytes).
 *
 * Ownership: the encoder appends to a buffer the caller owns; the decoder
 * only reads its input and pushes onto the state it is given.
 */
#ifndef AQ_WORK_VALUES_H
#define AQ_WORK_VALUES_H

#include <stddef.h>
#include <stdint.h>

#include "aqueue.h"

/* Deeper nesting is refused: it is almost always a cycle through several
 * tables, and it bounds the C recursion of the encoder and decoder. */
#define WORK_MAX_DEPTH 100

/* Stack room the encoder needs: two slots per level of nesting, and spare.
 * The caller makes it (luaL_checkstack) before encoding. */
#define WORK_ENCODE_STACK (2 * WORK_MAX_DEPTH + 8)

static inline void work_put_u32(aq_buf *b, uint32_t v) { aq_buf_add(b, (const char *)&v, sizeof v); }
static inline void work_put_u64(aq_buf *b, uint64_t v) { aq_buf_add(b, (const char *)&v, sizeof v); }

/* --- encoding (either side) --- */

typedef struct {
  lua_State *L;
  aq_buf *out;
  const void *path[WORK_MAX_DEPTH]; /* the tables being encoded, outermost first */
  int depth;
  char what[96];   /* on failure: what was refused ("a function") */
  char where[200]; /* on failure: the keys leading to it (".a[2]"), built while unwinding */
  int in_key;      /* on failure: the refused value is used as a key at `where` */
} work_encoder;

/* Appends the value at stack index idx (absolute) of e->L to e->out.
 * Returns 0, or -1 with e->what / e->where saying what cannot cross. Never
 * raises; running out of memory shows as e->out->failed. */
int work_encode_value(work_encoder *e, int idx);

/* Writes into msg why value number n failed to encode: `kind` is
 * "argument" or "result", `direction` "to" or "back from" (a pool thread). */
void work_describe_failure(const work_encoder *e, char *msg, size_t size, const char *kind, int n,
                           const char *direction);

/* --- decoding (either side; raises on out of memory or malformed input,
 * so only inside a protected call) --- */

typedef struct {
  const char *p, *end;
} work_reader;

void work_read_bytes(lua_State *L, work_reader *r, void *out, size_t n);
uint32_t work_read_u32(lua_State *L, work_reader *r);
/* Pushes the next value of r onto L. */
void work_decode_value(lua_State *L, work_reader *r, int depth);

#endif
