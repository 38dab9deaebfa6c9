/*
 * html.h — the private header of aqueue.html_core: HTML documents parsed by
 * libxml2's HTML parser, queried with XPath evaluated by libxml2. Built as a
 * loadable module on the public API only (aqueue.h) and libxml2.
 * lua/aqueue/html.lua is its Lua side (the CSS translation, the caches,
 * links()).
 *
 * The files, one job each:
 *   html_module.c  luaopen: the module's functions and the node metatable
 *   html_parse.c   text -> libxml2 document, on the loop thread or (large
 *                  pages) on the thread pool
 *   html_doc.c     the shared document and the node objects Lua holds: their
 *                  counts, where a tree is freed (the module's per-engine
 *                  state), the quiet errors
 *   html_node.c    what a node tells: tag, text, attribute, outer HTML
 *   html_xpath.c   compiled XPath expressions, their evaluation (one XPath
 *                  context per Lua state), the results
 *   html_select.c  the simplest selectors (a tag, its text, one attribute)
 *                  by a walk of the tree instead of XPath
 *   html_arena.c   the memory of trees: libxml2's allocation hooks, an arena
 *                  per parse, freed whole with its document
 *
 * Layers: html_module.c on top; html_parse.c, html_node.c, html_xpath.c and
 * html_select.c use html_doc.c (html_xpath.c and html_select.c also
 * html_node.c's attribute values and an element's link attribute);
 * html_parse.c and html_doc.c use html_arena.c; nothing calls up.
 *
 * Ownership: a parsed libxml2 document belongs to one html_doc, which is
 * counted: every Lua node object (the document object is the node of the
 * document itself) holds one count, and the document is freed when the last
 * of them is collected. So a node never outlives the tree it points into,
 * whatever order the collector takes them in, and no registry reference or
 * Lua table is needed per node.
 *
 * Threads: everything runs on the loop thread, except parsing a page from a
 * task (html_parse_text(), which touches only its arguments and the document
 * it makes; every page with more than one core, else a large one) and
 * freeing a large page's tree once Lua let go of it (html_doc.c): both on
 * the thread pool. libxml2 is thread-safe once xmlInitParser() ran on the
 * loop thread, in luaopen. An arena belongs to the thread parsing into it
 * (a thread-local pointer) until the parse ends, then to its document; the
 * spare chunks between parses are shared under a lock (html_arena.c).
 */
#ifndef AQ_HTML_H
#define AQ_HTML_H

#include <stddef.h>

#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>
#include <lua.h>

#include "aqueue.h"

#define HTML_NODE_MT "aqueue.html.node"
#define HTML_XPATH_MT "aqueue.html.xpath"
#define HTML_XPATH_CONTEXT_MT "aqueue.html.xpath_context"

/* --- the shared document and node objects (html_doc.c) --- */

/* The module's state for one engine (aq_module_state). */
typedef struct {
  uv_loop_t *loop;
  int closing; /* set by the engine's close hook: no more pool work */
} html_state;

/* The state of the engine running L, made on first use. Raises when out of
 * memory. */
html_state *html_state_get(lua_State *L);

typedef struct {
  int refs;                 /* Lua node objects pointing into doc */
  htmlDocPtr doc;           /* owned: freed with the last reference */
  html_state *free_on_pool; /* non-NULL: a large page's, freed on the thread pool */
  int base_href_known;      /* base_href was looked up (html_node_base_url) */
  xmlChar *base_href;       /* owned: the first <base href>'s value, or NULL */
} html_doc;

/* The userdata of a node (and of the document: node == (xmlNodePtr)d->doc). */
typedef struct {
  html_doc *d; /* counted reference */
  xmlNodePtr node;
} html_node;

/* Pushes a new document object with no document yet (made before parsing,
 * so that nothing can fail once a document is there). Raises when out of
 * memory. */
html_node *html_doc_new_object(lua_State *L);

/* Gives doc to the document object: 0, or -1 when out of memory (doc is
 * freed then, and the object stays without a document). free_on_pool: NULL,
 * or the state of the engine on whose thread pool the tree is to be freed. */
int html_doc_attach(html_node *object, htmlDocPtr doc, html_state *free_on_pool);

/* Pushes a node object for `node` of d's document (one more count of d).
 * mt_index: a stack index holding the node metatable. Raises when out of
 * memory. */
void html_node_push(lua_State *L, html_doc *d, xmlNodePtr node, int mt_index);

/* The node object at index i, raising a Lua argument error otherwise. */
html_node *html_node_check(lua_State *L, int i);

/* An error handler that prints nothing: errors are read from the context's
 * lastError instead. */
xmlStructuredErrorFunc html_quiet_errors(void);

/* Silences libxml2 on the calling thread (its handlers are per thread): the
 * parser's NOERROR leaves out some messages (a charset conversion that
 * failed), and an XPath evaluation names an unknown function on stderr
 * besides recording the error. Markup is mended, never reported; XPath
 * errors reach Lua as errors. */
void html_quiet_thread(void);

/* live_documents() -> how many documents are parsed and not freed yet. */
int html_l_live_documents(lua_State *L);

/* The node metatable's __gc, __eq and __tostring. */
int html_node_gc(lua_State *L);
int html_node_eq(lua_State *L);
int html_node_tostring(lua_State *L);

/* --- parsing (html_parse.c) --- */

/* Parses len bytes of text: never fails on markup (libxml2 recovers as
 * browsers do). base_url and encoding may be NULL; an encoding libxml2 does
 * not know is ignored (then <meta> decides, else UTF-8). Text without any
 * markup (JSON, plain text, binary, nothing) gives an empty document. Returns
 * NULL only when out of memory. Any thread. */
htmlDocPtr html_parse_text(const char *text, size_t len, const char *base_url, const char *encoding);

/* --- the memory of trees (html_arena.c) --- */

typedef struct html_arena html_arena;

/* Makes libxml2 allocate through the arena hooks: before any other libxml2
 * call of the process. */
void html_arena_install(void);

/* The calling thread's next small allocations of libxml2 come from a new
 * arena, until html_arena_end. Returns it (NULL when out of memory: they
 * come from malloc then). */
html_arena *html_arena_begin(void);
/* Ends the parse into a (which may be NULL): its blocks stay until html_arena_free. */
void html_arena_end(html_arena *a);
void html_arena_free(html_arena *a);

/* xmlFreeDoc, then the arena the document was parsed into (doc->_private). */
void html_free_document(htmlDocPtr doc);

/* The bytes of its arena a parsed document takes (the blocks handed out,
 * not the chunks' free space): what the Lua side tells its collector. */
size_t html_document_bytes(htmlDocPtr doc);

/* parse(text [, base_url [, encoding]]) -> document, bytes (its
 * html_document_bytes), on the calling thread. */
int html_l_parse(lua_State *L);

/* parse_in_pool(text [, base_url [, encoding]]) -> document, bytes: the same
 * on a pool thread; the calling task yields meanwhile. */
int html_l_parse_in_pool(lua_State *L);

/* --- what a node tells (html_node.c) --- */

/* node.tag and the methods: __index(node, key). upvalue 1: the methods. */
int html_node_index(lua_State *L);
int html_node_text(lua_State *L);
int html_node_attr(lua_State *L);
int html_node_html(lua_State *L);
int html_node_base_url(lua_State *L);

/* Pushes an attribute's value ("" for one written without a value). */
void html_push_attr_value(lua_State *L, xmlAttrPtr a);

/* What links() takes from an element: its href, else its src, else NULL. */
xmlAttrPtr html_link_attr(xmlNodePtr n);

/* --- XPath (html_xpath.c) --- */

/* compile(expr) -> compiled expression, or nil, message. */
int html_xpath_compile(lua_State *L);

/* eval(node, compiled [, first [, links]]) -> the result (a list of nodes
 * and strings, a string, a number or a boolean; with first, the first item
 * or nil; with links, a node-set as the strings links() takes), or nil,
 * message. upvalue 1: the node metatable; upvalue 2: the Lua state's
 * XPath context (html_xpath_context_new). */
int html_xpath_eval(lua_State *L);

/* Pushes a userdata holding a new XPath context, which its __gc
 * (html_xpath_context_gc) frees: the one context of eval. Raises when out of
 * memory. */
int html_xpath_context_new(lua_State *L);
int html_xpath_context_gc(lua_State *L);

/* The compiled expression's __gc. */
int html_xpath_gc(lua_State *L);

/* --- the simplest selectors (html_select.c) --- */

/* select(node, tag, what [, attr [, first [, links]]]) -> what eval gives for
 * descendant-or-self::tag (what "elements"), its /text() ("text") or its
 * /@attr ("attribute"), found by a walk of the tree. upvalue 1: the node
 * metatable. */
int html_select(lua_State *L);

#endif /* AQ_HTML_H */
