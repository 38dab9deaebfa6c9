/*
 * html_doc.c — the shared document and the node objects Lua holds.
 *
 * A node object is a small userdata { html_doc *, xmlNodePtr }; the document
 * object is the node of the document itself. Each object holds one count of
 * its html_doc, released by its __gc; the last release frees the libxml2
 * tree (html.h, "Ownership").
 *
 * Freeing a tree costs about a sixth of parsing it (6 ms for a 1 MB page), so
 * the tree of a page of 1 MB or more (html_parse.c) is freed on the thread
 * pool too, unless the engine is closing (its loop then runs no more work:
 * the tree is freed at once).
 */
#include <stdlib.h>

#include <lauxlib.h>
#include <libxml/xmlerror.h>

#include "html.h"

/* Documents parsed and not freed yet (loop thread only): the specs check with
 * it that a node keeps its document and that the last release frees it. */
static long live_documents;

/* --- the module's state --- */

static char state_key;

static void on_engine_close(aq_engine *engine, void *state) {
  (void)engine;
  ((html_state *)state)->closing = 1;
}

html_state *html_state_get(lua_State *L) {
  html_state *st = aq_module_state(L, &state_key, sizeof *st, on_engine_close);
  if (!st->loop) st->loop = aq_engine_loop(aq_engine_from_lua(L));
  return st;
}

/* --- freeing a tree on the thread pool --- */

/* Owned by this file from free_tree until tree_freed. */
typedef struct {
  uv_work_t req;
  htmlDocPtr doc;
} free_job;

static void free_on_pool_thread(uv_work_t *req) {
  free_job *job = req->data;
  html_free_document(job->doc);
  job->doc = NULL;
}

static void tree_freed(uv_work_t *req, int status) {
  free_job *job = req->data;
  (void)status;
  if (job->doc) html_free_document(job->doc); /* the work was cancelled before it ran */
  free(job);
}

/* Frees doc on the thread pool when st says so and the pool takes it, else at once. */
static void free_tree(htmlDocPtr doc, html_state *st) {
  if (st && !st->closing) {
    free_job *job = malloc(sizeof *job);
    if (job) {
      job->req.data = job;
      job->doc = doc;
      if (uv_queue_work(st->loop, &job->req, free_on_pool_thread, tree_freed) == 0) return;
      free(job);
    }
  }
  html_free_document(doc);
}

static void doc_release(html_doc *d) {
  if (--d->refs > 0) return;
  xmlFree(d->base_href);
  free_tree(d->doc, d->free_on_pool);
  free(d);
  live_documents--;
}

int html_l_live_documents(lua_State *L) {
  lua_pushnumber(L, (lua_Number)live_documents);
  return 1;
}

html_node *html_doc_new_object(lua_State *L) {
  html_node *n = lua_newuserdata(L, sizeof *n);
  n->d = NULL;
  n->node = NULL;
  luaL_getmetatable(L, HTML_NODE_MT);
  lua_setmetatable(L, -2);
  return n;
}

int html_doc_attach(html_node *object, htmlDocPtr doc, html_state *free_on_pool) {
  html_doc *d = malloc(sizeof *d);
  if (!d) {
    html_free_document(doc);
    return -1;
  }
  d->refs = 1;
  d->doc = doc;
  d->free_on_pool = free_on_pool;
  d->base_href_known = 0;
  d->base_href = NULL;
  object->d = d;
  object->node = (xmlNodePtr)doc;
  live_documents++;
  return 0;
}

void html_node_push(lua_State *L, html_doc *d, xmlNodePtr node, int mt_index) {
  html_node *n = lua_newuserdata(L, sizeof *n);
  n->d = d;
  n->node = node;
  d->refs++;
  lua_pushvalue(L, mt_index);
  lua_setmetatable(L, -2);
}

html_node *html_node_check(lua_State *L, int i) {
  html_node *n = luaL_checkudata(L, i, HTML_NODE_MT);
  if (!n->d) luaL_argerror(L, i, "a document that was never parsed"); /* only if its parse failed */
  return n;
}

/* Errors of an evaluation are read from ctx->lastError after it failed; this
 * handler only keeps libxml2 from printing them on stderr. */
static void keep_quiet(void *data, xmlErrorPtr error) {
  (void)data;
  (void)error;
}

xmlStructuredErrorFunc html_quiet_errors(void) { return keep_quiet; }

static void keep_quiet_generic(void *data, const char *fmt, ...) {
  (void)data;
  (void)fmt;
}

void html_quiet_thread(void) {
  xmlSetGenericErrorFunc(NULL, keep_quiet_generic);
  xmlSetStructuredErrorFunc(NULL, keep_quiet);
}

int html_node_gc(lua_State *L) {
  html_node *n = lua_touserdata(L, 1);
  if (n->d) doc_release(n->d);
  n->d = NULL;
  return 0;
}

/* Two objects are equal when they are the same node (each query makes new
 * objects). */
int html_node_eq(lua_State *L) {
  html_node *a = lua_touserdata(L, 1), *b = lua_touserdata(L, 2);
  lua_pushboolean(L, a->node == b->node);
  return 1;
}

int html_node_tostring(lua_State *L) {
  html_node *n = luaL_checkudata(L, 1, HTML_NODE_MT);
  if (!n->node || n->node->type != XML_ELEMENT_NODE) lua_pushfstring(L, "aqueue.html document: %p", (void *)n->node);
  else lua_pushfstring(L, "aqueue.html node <%s>: %p", (const char *)n->node->name, (void *)n->node);
  return 1;
}
