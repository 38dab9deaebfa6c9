/*
 * html_arena.c — the memory of libxml2's trees.
 *
 * A parsed page is thousands of small blocks (nodes, attributes, text) that
 * live and die together. Through malloc each was allocated alone and freed
 * alone, by another thread than the one that made it when the page was
 * parsed on the pool: about as much CPU as the parse itself. libxml2
 * allocates through hooks (xmlGcMemSetup), so while a parse runs on a thread
 * its small blocks come from an arena of that parse's own: chunks of
 * CHUNK_SIZE handed out front to back. The document keeps its arena
 * (doc->_private), and freeing it gives the chunks back without walking the
 * tree (html_free_document). Chunks given back wait for the next parse (up
 * to SPARE_MAX bytes of them): a freed chunk returned to the kernel had to
 * be faulted in again by the next page.
 *
 * Every block carries a 16-byte header naming its arena (NULL: malloc's), so
 * that xmlFree and xmlRealloc work on any block, whoever made it and
 * wherever it is freed. Blocks larger than SMALL_MAX (large text, a big
 * hash table) are malloc's even in a parse, listed in their arena, which
 * frees those still there. Everything libxml2 allocates outside a parse is
 * plain malloc's (XPath node sets, strings returned to us, the parser
 * context and its dictionary, made before the parse). The one thing a
 * parse leaves behind is the calling thread's last error, whose strings may
 * be the arena's: html_arena_end clears it while the arena lives.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlmemory.h>
#include <uv.h>

#include "html.h"

#define CHUNK_SIZE (64 * 1024 - 64) /* (below malloc's mmap threshold, with its overhead) */
#define SMALL_MAX (4 * 1024)
#define SPARE_MAX (32 * 1024 * 1024)

typedef struct chunk {
  struct chunk *next;
  size_t used; /* bytes of data[] handed out */
  _Alignas(16) unsigned char data[];
} chunk;
#define CHUNK_DATA (CHUNK_SIZE - offsetof(chunk, data))

/* A block above SMALL_MAX made for an arena: malloc's, listed in its arena
 * so that the arena frees what the tree still holds of them. */
typedef struct large {
  struct large *prev, *next;
} large;
_Static_assert(sizeof(large) == 16, "blocks stay 16-byte aligned");

struct html_arena {
  large *larges;  /* the large blocks of the parse still allocated */
  chunk *chunks;  /* the newest first: blocks come from its free space */
  chunk *reserve; /* taken from the spare ones, not used yet; given back when the parse ends */
  int take_next;  /* spare chunks to take at the next turn of the lock */
};

#define TAKE_AT_ONCE 16 /* at most, spare chunks an arena takes per turn of the lock */

typedef struct {
  html_arena *owner; /* NULL: a block of malloc's */
  size_t size;       /* what was asked for */
} header;
_Static_assert(sizeof(header) == 16, "blocks stay 16-byte aligned");

/* The arena of the parse running on this thread. initial-exec: read without
 * a call to __tls_get_addr at each of the 100-odd allocations of a small
 * parse (1.6 % of it); the module is dlopened, but 8 bytes fit in the static
 * TLS that glibc keeps for such modules. */
static _Thread_local html_arena *current __attribute__((tls_model("initial-exec")));

/* Chunks given back, for the next parses of any thread. */
static uv_once_t spare_once = UV_ONCE_INIT;
static uv_mutex_t spare_lock;
static chunk *spare;
static size_t spare_bytes;

static void spare_init(void) {
  if (uv_mutex_init(&spare_lock) != 0) abort();
}

/* A chunk for arena a: from its reserve, which is refilled with spare
 * chunks, 1, then 2, 4 and so on up to TAKE_AT_ONCE at a time (the thread
 * that frees documents and the one that parses take turns at the lock once
 * per many chunks of a large page, not once per chunk, and a small page
 * takes the one chunk it needs), else from malloc. */
static chunk *chunk_new(html_arena *a) {
  if (!a->reserve) {
    int take = a->take_next;
    if (a->take_next < TAKE_AT_ONCE) a->take_next *= 2;
    uv_mutex_lock(&spare_lock);
    for (int i = 0; i < take && spare; i++) {
      chunk *c = spare;
      spare = c->next;
      spare_bytes -= CHUNK_SIZE;
      c->next = a->reserve;
      a->reserve = c;
    }
    uv_mutex_unlock(&spare_lock);
  }
  chunk *c = a->reserve;
  if (c) a->reserve = c->next;
  else c = malloc(CHUNK_SIZE);
  if (c) c->used = 0;
  return c;
}

static void *arena_take(html_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  chunk *c = a->chunks;
  if (!c || CHUNK_DATA - c->used < n) {
    c = chunk_new(a);
    if (!c) return NULL;
    c->next = a->chunks;
    a->chunks = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

/* A header for a large block of arena a (its links before it). */
static header *large_new(html_arena *a, size_t n) {
  if (n > SIZE_MAX - sizeof(large) - sizeof(header)) return NULL;
  large *l = malloc(sizeof *l + sizeof(header) + n);
  if (!l) return NULL;
  l->prev = NULL;
  l->next = a->larges;
  if (a->larges) a->larges->prev = l;
  a->larges = l;
  return (header *)(l + 1);
}

static void large_free(header *h) {
  large *l = (large *)h - 1;
  html_arena *a = h->owner;
  if (l->prev) l->prev->next = l->next;
  else a->larges = l->next;
  if (l->next) l->next->prev = l->prev;
  free(l);
}

/* A block of n bytes for arena a: from its chunks, or a large one. */
static header *arena_block(html_arena *a, size_t n) {
  return n <= SMALL_MAX ? arena_take(a, sizeof(header) + n) : large_new(a, n);
}

static void *hook_malloc(size_t n) {
  if (n > SIZE_MAX - sizeof(header)) return NULL;
  html_arena *a = current;
  header *h = a ? arena_block(a, n) : malloc(sizeof *h + n);
  if (!h) return NULL;
  h->owner = a;
  h->size = n;
  return h + 1;
}

static void hook_free(void *p) {
  if (!p) return;
  header *h = (header *)p - 1;
  if (!h->owner) free(h);
  else if (h->size > SMALL_MAX) large_free(h);
  /* (a small block of an arena goes with its arena) */
}

/* A block made outside a parse stays malloc's (it must not move into an
 * arena, which would free it with the document); an arena's block grows
 * within its own arena. */
static void *hook_realloc(void *p, size_t n) {
  if (!p) return hook_malloc(n);
  if (n > SIZE_MAX - sizeof(header)) return NULL;
  header *h = (header *)p - 1;
  if (!h->owner) {
    header *g = realloc(h, sizeof *g + n);
    if (!g) return NULL;
    g->size = n;
    return g + 1;
  }
  header *g = arena_block(h->owner, n);
  if (!g) return NULL;
  g->owner = h->owner;
  g->size = n;
  memcpy(g + 1, p, h->size < n ? h->size : n);
  if (h->size > SMALL_MAX) large_free(h);
  return g + 1;
}

static char *hook_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *c = hook_malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

void html_arena_install(void) {
  uv_once(&spare_once, spare_init);
  xmlGcMemSetup(hook_free, hook_malloc, hook_malloc, hook_realloc, hook_strdup);
}

/* Gives the chunks of list c back: kept for later parses up to SPARE_MAX,
 * the others to malloc. Call with spare_lock held. */
static void give_back(chunk *c) {
  while (c) {
    chunk *next = c->next;
    if (spare_bytes + CHUNK_SIZE <= SPARE_MAX) {
      c->next = spare;
      spare = c;
      spare_bytes += CHUNK_SIZE;
    } else {
      free(c);
    }
    c = next;
  }
}

html_arena *html_arena_begin(void) {
  html_arena *a = calloc(1, sizeof *a);
  if (a) a->take_next = 1;
  current = a; /* (NULL when out of memory: the parse allocates from malloc) */
  return a;
}

/* The reserve goes back at once: a document kept the chunks its parse took
 * and did not use (15 of 16, when each parse took 16) for as long as it
 * lived, and a crawl holding 600 small documents held 140 MB. */
void html_arena_end(html_arena *a) {
  xmlResetLastError(); /* its strings may be the arena's */
  current = NULL;
  if (a && a->reserve) {
    uv_mutex_lock(&spare_lock);
    give_back(a->reserve);
    uv_mutex_unlock(&spare_lock);
    a->reserve = NULL;
  }
}

void html_arena_free(html_arena *a) {
  if (!a) return;
  for (large *l = a->larges, *next; l; l = next) {
    next = l->next;
    free(l);
  }
  uv_mutex_lock(&spare_lock);
  give_back(a->chunks);
  uv_mutex_unlock(&spare_lock);
  free(a);
}

/* The chunks kept are freed when the process ends (this module stays loaded
 * until then: html_module.c). */
__attribute__((destructor)) static void spare_release(void) {
  if (!spare) return; /* (nothing parsed: spare_lock may never have been made) */
  uv_mutex_lock(&spare_lock);
  chunk *c = spare;
  spare = NULL;
  spare_bytes = 0;
  uv_mutex_unlock(&spare_lock);
  while (c) {
    chunk *next = c->next;
    free(c);
    c = next;
  }
}

size_t html_document_bytes(htmlDocPtr doc) {
  size_t used = 0;
  const html_arena *a = doc->_private;
  for (const chunk *c = a ? a->chunks : NULL; c; c = c->next) used += c->used;
  return used;
}

/* A parsed tree is not walked: every block of it is its arena's, which goes
 * whole, but for the dictionary of names, made with the parser context
 * before the arena (its pools are the arena's). A document made outside a
 * parse (empty_document) is freed by libxml2. */
void html_free_document(htmlDocPtr doc) {
  html_arena *a = doc->_private;
  if (!a) {
    xmlFreeDoc(doc);
    return;
  }
  if (doc->dict) xmlDictFree(doc->dict);
  html_arena_free(a);
}
