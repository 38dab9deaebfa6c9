/*
 * html_parse.c — text -> libxml2 document.
 *
 * libxml2's HTML parser with RECOVER, NOERROR, NOWARNING and NONET never
 * fails on markup: unclosed tags, stray end tags and unquoted attributes are
 * mended the way browsers mend them. The charset: the encoding argument (the
 * caller's, from a Content-Type header) wins; without it libxml2 follows the
 * page's <meta charset> or <meta http-equiv="Content-Type">, else reads
 * UTF-8 (and, meeting bytes that are not, Latin-1).
 *
 * Parsing costs 7-10 ms per 300 KB on the machine of README's figures (25-40
 * ms for 1 MB), so a large page would stall every other task: lua/aqueue/html.lua sends pages
 * above a threshold to parse_in_pool, which parses on libuv's thread pool
 * while the task yields (aq_task_work). Only plain memory crosses: a copy of
 * the text goes to the pool thread, the finished libxml2 document comes
 * back, and the Lua object around it is made on the loop thread. Such a
 * document is freed on the pool too (html_doc.c). A tree's small blocks come
 * from an arena of its parse's own (html_arena.c), which goes with it.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <libxml/HTMLtree.h>
#include <libxml/parserInternals.h>

#include "html.h"

#define PARSE_OPTIONS \
  (HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET | HTML_PARSE_COMPACT)

/* Whether text holds a tag, a comment or a doctype: '<' followed by a letter,
 * '/', '!' or '?'. libxml2 wraps text without any (a JSON body, a binary
 * file) in <html><body><p>, which would make it look like a page. */
static int has_markup(const char *text, size_t len) {
  const char *p = text, *end = text + len;
  while ((p = memchr(p, '<', (size_t)(end - p))) && p + 1 < end) {
    unsigned char c = (unsigned char)p[1];
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return 1;
    if (c == '/' || c == '!' || c == '?') return 1;
    p++;
  }
  return 0;
}

static htmlDocPtr empty_document(const char *base_url) {
  htmlDocPtr doc = htmlNewDocNoDtD(NULL, NULL);
  if (doc && base_url) {
    doc->URL = xmlStrdup((const xmlChar *)base_url);
    if (!doc->URL) {
      html_free_document(doc);
      return NULL;
    }
  }
  return doc;
}

/* A parser context holding a copy of text, with the caller's charset if
 * libxml2 knows it: what htmlReadMemory sets up, made here before the
 * parse's arena so that the context's tables die with it rather than with
 * the document. Its input buffer holds the whole text: left with its read
 * callback (one that reads nothing), libxml2 asked it for more text at
 * nearly every tag of a small page, an eighth of the parse. */
static htmlParserCtxtPtr new_context(const char *text, size_t len, const char *encoding) {
  htmlParserCtxtPtr ctxt = htmlCreateMemoryParserCtxt(text, (int)len);
  if (!ctxt) return NULL;
  if (ctxt->input && ctxt->input->buf) ctxt->input->buf->readcallback = NULL;
  /* UTF-8 until a <meta> says otherwise, Latin-1 from the first byte that is
   * not UTF-8 (htmlReadMemory's context starts so; htmlCreateMemoryParserCtxt's
   * would take the first non-ASCII byte for Latin-1) */
  ctxt->charset = XML_CHAR_ENCODING_UTF8;
  htmlCtxtUseOptions(ctxt, PARSE_OPTIONS);
  xmlCharEncodingHandlerPtr handler = encoding ? xmlFindCharEncodingHandler(encoding) : NULL;
  if (handler) xmlSwitchToEncoding(ctxt, handler); /* (a <meta> cannot switch it again) */
  return ctxt;
}

htmlDocPtr html_parse_text(const char *text, size_t len, const char *base_url, const char *encoding) {
  if (len > INT_MAX || !has_markup(text, len)) return empty_document(base_url);
  htmlParserCtxtPtr ctxt = new_context(text, len, encoding);
  if (!ctxt) return NULL;
  html_arena *arena = html_arena_begin();
  htmlParseDocument(ctxt);
  htmlDocPtr doc = ctxt->myDoc;
  ctxt->myDoc = NULL;
  if (doc && doc->dict == ctxt->dict) ctxt->dict = NULL; /* the document's now, as htmlReadMemory leaves it */
  int failed = !doc || (base_url && !(doc->URL = xmlStrdup((const xmlChar *)base_url)));
  html_arena_end(arena);
  htmlFreeParserCtxt(ctxt);
  if (failed) {
    if (doc) html_free_document(doc);
    html_arena_free(arena);
    return doc ? NULL : empty_document(base_url); /* out of memory, or nothing libxml2 could read */
  }
  doc->_private = arena; /* freed with the document (html_free_document) */
  return doc;
}

/* The arguments of parse and parse_in_pool: (text [, base_url [, encoding]]). */
static const char *read_args(lua_State *L, size_t *len, const char **base_url, const char **encoding) {
  const char *text = luaL_checklstring(L, 1, len);
  if (*len > INT_MAX) luaL_argerror(L, 1, "a page larger than 2 GB");
  *base_url = luaL_optstring(L, 2, NULL);
  *encoding = luaL_optstring(L, 3, NULL);
  return text;
}

int html_l_parse(lua_State *L) {
  size_t len;
  const char *base_url, *encoding;
  const char *text = read_args(L, &len, &base_url, &encoding);
  html_node *object = html_doc_new_object(L);
  htmlDocPtr doc = html_parse_text(text, len, base_url, encoding);
  if (!doc) return luaL_error(L, "aqueue.html.parse: out of memory");
  size_t bytes = html_document_bytes(doc);
  if (html_doc_attach(object, doc, NULL) != 0) return luaL_error(L, "aqueue.html.parse: out of memory");
  lua_pushnumber(L, (lua_Number)bytes);
  return 2;
}

/* --- on the thread pool --- */

/* What crosses to the pool thread and back. Owned by this file from
 * html_l_parse_in_pool until after_parse frees it. */
typedef struct {
  char *text; /* a copy, freed by the pool thread once parsed */
  size_t len;
  char *base_url, *encoding; /* copies or NULL */
  htmlDocPtr doc;            /* the result, NULL when out of memory */
  html_state *state;         /* where the tree will be freed (html_doc.c) */
} parse_job;

static void job_free(parse_job *job) {
  free(job->text);
  free(job->base_url);
  free(job->encoding);
  free(job);
}

static char *copy_or_null(const char *s, int *failed) {
  if (!s) return NULL;
  char *c = strdup(s);
  if (!c) *failed = 1;
  return c;
}

static void parse_on_pool_thread(void *data) {
  parse_job *job = data;
  html_quiet_thread(); /* this pool thread's handlers */
  job->doc = html_parse_text(job->text, job->len, job->base_url, job->encoding);
  free(job->text);
  job->text = NULL;
}

/* Pages of at least this many bytes have their tree freed on the thread pool
 * too (about 6 ms of the loop for a 1 MB page); a smaller one's tree is freed
 * on the loop thread, by its collector step (under 2 ms for 300 KB). Freed on
 * a pool thread, a tree's memory went back to the parsing thread's malloc
 * arena while that arena's thread parsed the next page: the two took turns
 * at its lock, and a task parsed 300 KB pages at 37 a second instead of 75. */
#define HTML_FREE_ON_POOL_MIN (1024 * 1024)

/* On the loop thread: the task gets its document (a Lua memory error here
 * would be a LuaJIT panic, as anywhere outside a protected call), or, when
 * cancelled (co NULL), the document is freed. */
static int after_parse(lua_State *co, void *data) {
  parse_job *job = data;
  htmlDocPtr doc = job->doc;
  html_state *state = job->len >= HTML_FREE_ON_POOL_MIN ? job->state : NULL;
  job_free(job);
  if (!co) {
    if (doc) html_free_document(doc);
    return 0;
  }
  if (!doc) return aq_push_failure(co, "ENOMEM", "aqueue.html.parse: out of memory");
  size_t bytes = html_document_bytes(doc);
  html_node *object = html_doc_new_object(co);
  if (html_doc_attach(object, doc, state) != 0) {
    lua_pop(co, 1);
    return aq_push_failure(co, "ENOMEM", "aqueue.html.parse: out of memory");
  }
  lua_pushnumber(co, (lua_Number)bytes);
  return 2;
}

int html_l_parse_in_pool(lua_State *L) {
  size_t len;
  const char *base_url, *encoding;
  const char *text = read_args(L, &len, &base_url, &encoding);
  html_state *state = html_state_get(L); /* (raises: before anything is ours) */
  parse_job *job = calloc(1, sizeof *job);
  if (!job) return luaL_error(L, "aqueue.html.parse: out of memory");
  job->state = state;
  int failed = 0;
  job->len = len;
  job->text = malloc(len ? len : 1);
  if (job->text) memcpy(job->text, text, len);
  else failed = 1;
  job->base_url = copy_or_null(base_url, &failed);
  job->encoding = copy_or_null(encoding, &failed);
  if (failed) {
    job_free(job);
    return luaL_error(L, "aqueue.html.parse: out of memory");
  }
  return aq_task_work(L, parse_on_pool_thread, after_parse, job);
}
