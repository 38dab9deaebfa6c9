/*
 * html_xpath.c — XPath expressions: compiled once (lua/aqueue/html.lua keeps
 * the compiled ones per expression string), evaluated against a node with
 * the Lua state's one XPath context. A context costs more to make than a
 * small page to query (libxml2 registers its hundred-odd functions in each
 * new one), so one serves every document: pointed at the node for an
 * evaluation, and at nothing between them.
 *
 * Results: a node-set becomes a Lua list in document order, where elements
 * (and the document) are node objects and every other node is its string
 * value (text, comment, attribute: so `//a/@href` and `a::attr(href)` give
 * strings); a string, number or boolean expression gives that value. For
 * links() a node-set becomes strings only, an element giving its href (else
 * src): a page's links make no node objects.
 *
 * Errors come back as nil, message (the Lua side raises, naming the
 * expression): libxml2 records an error in the context's lastError, and the
 * context's handler keeps it from printing anything.
 */
#include <string.h>

#include <lauxlib.h>
#include <libxml/xmlerror.h>

#include "html.h"

typedef struct {
  xmlXPathCompExprPtr comp; /* owned, freed by __gc */
} html_xpath;

/* What went wrong, in words, for libxml2's XPath error codes (xmlXPathError). */
static const char *error_text(int code) {
  switch (code) {
  case XPATH_NUMBER_ERROR: return "a number is malformed";
  case XPATH_UNFINISHED_LITERAL_ERROR: return "a string is not closed";
  case XPATH_START_LITERAL_ERROR: return "a string was expected";
  case XPATH_VARIABLE_REF_ERROR: return "a variable name is malformed";
  case XPATH_UNDEF_VARIABLE_ERROR: return "undefined variable";
  case XPATH_INVALID_PREDICATE_ERROR: return "invalid predicate";
  case XPATH_EXPR_ERROR: return "invalid expression";
  case XPATH_UNCLOSED_ERROR: return "missing ')' or ']'";
  case XPATH_UNKNOWN_FUNC_ERROR: return "unknown function";
  case XPATH_INVALID_OPERAND: return "invalid operand";
  case XPATH_INVALID_TYPE: return "wrong type of value";
  case XPATH_INVALID_ARITY: return "wrong number of arguments to a function";
  case XPATH_MEMORY_ERROR: return "out of memory";
  case XPATH_UNDEF_PREFIX_ERROR: return "undefined namespace prefix";
  case XPATH_ENCODING_ERROR: return "not valid UTF-8";
  case XPATH_INVALID_CHAR_ERROR: return "invalid character";
  case XPATH_OP_LIMIT_EXCEEDED: return "too many operations";
  case XPATH_RECURSION_LIMIT_EXCEEDED: return "nested too deeply";
  default: return "invalid XPath";
  }
}

/* Pushes nil and the message of the error the context recorded; returns 2.
 * with_position: the error is a compile error, whose offset into the
 * expression libxml2 gives in int1. */
static int push_error(lua_State *L, xmlXPathContextPtr ctx, int with_position) {
  xmlErrorPtr e = &ctx->lastError;
  const char *text = e->code ? error_text(e->code - XML_XPATH_EXPRESSION_OK) : "invalid XPath";
  lua_pushnil(L);
  if (with_position && e->code) lua_pushfstring(L, "%s at character %d", text, e->int1 + 1);
  else lua_pushstring(L, text);
  return 2;
}

int html_xpath_compile(lua_State *L) {
  size_t len;
  const char *expr = luaL_checklstring(L, 1, &len);
  if (strlen(expr) != len) {
    lua_pushnil(L);
    lua_pushliteral(L, "contains a NUL byte");
    return 2;
  }
  html_xpath *x = lua_newuserdata(L, sizeof *x);
  x->comp = NULL;
  luaL_getmetatable(L, HTML_XPATH_MT);
  lua_setmetatable(L, -2);
  /* A context of its own, so that the compile error is recorded there
   * rather than printed; it belongs to no document, and the compiled
   * expression does not keep it. */
  xmlXPathContextPtr ctx = xmlXPathNewContext(NULL);
  if (!ctx) return luaL_error(L, "aqueue.html: out of memory");
  ctx->error = html_quiet_errors();
  x->comp = xmlXPathCtxtCompile(ctx, (const xmlChar *)expr);
  int n = x->comp ? 1 : push_error(L, ctx, 1);
  xmlXPathFreeContext(ctx);
  return n;
}

int html_xpath_gc(lua_State *L) {
  html_xpath *x = lua_touserdata(L, 1);
  if (x->comp) xmlXPathFreeCompExpr(x->comp);
  x->comp = NULL;
  return 0;
}

/* Pushes one node of a node-set: a node object for an element or a document,
 * else the node's string value. */
static void push_item(lua_State *L, html_doc *d, xmlNodePtr n, int mt) {
  switch (n->type) {
  case XML_ELEMENT_NODE:
  case XML_DOCUMENT_NODE:
  case XML_HTML_DOCUMENT_NODE:
    html_node_push(L, d, n, mt);
    return;
  case XML_TEXT_NODE:
  case XML_CDATA_SECTION_NODE:
  case XML_COMMENT_NODE:
  case XML_PI_NODE:
    lua_pushstring(L, n->content ? (const char *)n->content : "");
    return;
  case XML_ATTRIBUTE_NODE:
    html_push_attr_value(L, (xmlAttrPtr)n);
    return;
  case XML_NAMESPACE_DECL:
    lua_pushstring(L, (const char *)((xmlNsPtr)n)->href);
    return;
  default:
    break;
  }
  xmlChar *s = xmlNodeGetContent(n);
  lua_pushstring(L, s ? (const char *)s : "");
  xmlFree(s);
}

/* Pushes what links() takes from one node of a node-set and returns 1: an
 * element's href, else its src (returns 0, pushing nothing, for an element
 * with neither, and for the document); any other node's string value (so
 * `a::attr(href)` gives the hrefs). */
static int push_link_value(lua_State *L, html_doc *d, xmlNodePtr n, int mt) {
  if (n->type == XML_ELEMENT_NODE) {
    xmlAttrPtr a = html_link_attr(n);
    if (!a) return 0;
    n = (xmlNodePtr)a;
  } else if (n->type == XML_DOCUMENT_NODE || n->type == XML_HTML_DOCUMENT_NODE) {
    return 0;
  }
  push_item(L, d, n, mt);
  return 1;
}

/* Pushes the result object's value (see the top of the file); `first`: only
 * the first node of a node-set, or nil; `links`: a node-set becomes the list
 * of its link values (push_link_value), strings only. */
static void push_result(lua_State *L, html_doc *d, xmlXPathObjectPtr res, int first, int links, int mt) {
  switch (res->type) {
  case XPATH_BOOLEAN: lua_pushboolean(L, res->boolval); return;
  case XPATH_NUMBER: lua_pushnumber(L, res->floatval); return;
  case XPATH_STRING: lua_pushstring(L, res->stringval ? (const char *)res->stringval : ""); return;
  default: break;
  }
  xmlNodeSetPtr set = res->nodesetval;
  int n = set ? set->nodeNr : 0;
  if (first) {
    if (n > 0) push_item(L, d, set->nodeTab[0], mt);
    else lua_pushnil(L);
    return;
  }
  lua_createtable(L, n, 0);
  int count = 0;
  for (int i = 0; i < n; i++) {
    if (!links) push_item(L, d, set->nodeTab[i], mt);
    else if (!push_link_value(L, d, set->nodeTab[i], mt)) continue;
    lua_rawseti(L, -2, ++count);
  }
}

/* A Lua memory error while the result is converted would leave `res`
 * unfreed; LuaJIT raises those only when it cannot grow its heap at all. */
int html_xpath_eval(lua_State *L) {
  html_node *node = html_node_check(L, 1);
  html_xpath *x = luaL_checkudata(L, 2, HTML_XPATH_MT);
  if (!x->comp) return luaL_argerror(L, 2, "an expression that did not compile");
  int first = lua_toboolean(L, 3);
  int links = lua_toboolean(L, 4);
  xmlXPathContextPtr ctx = *(xmlXPathContextPtr *)lua_touserdata(L, lua_upvalueindex(2));
  ctx->doc = node->d->doc;
  ctx->node = node->node;
  xmlResetError(&ctx->lastError);
  xmlXPathObjectPtr res = xmlXPathCompiledEval(x->comp, ctx);
  ctx->doc = NULL;
  ctx->node = NULL;
  if (!res) return push_error(L, ctx, 0);
  push_result(L, node->d, res, first, links, lua_upvalueindex(1));
  xmlXPathFreeObject(res);
  return 1;
}

int html_xpath_context_new(lua_State *L) {
  xmlXPathContextPtr *slot = lua_newuserdata(L, sizeof *slot);
  *slot = NULL;
  luaL_newmetatable(L, HTML_XPATH_CONTEXT_MT);
  lua_pushcfunction(L, html_xpath_context_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (!(*slot = xmlXPathNewContext(NULL))) return luaL_error(L, "aqueue.html: out of memory");
  (*slot)->error = html_quiet_errors();
  return 1;
}

int html_xpath_context_gc(lua_State *L) {
  xmlXPathContextPtr *slot = lua_touserdata(L, 1);
  if (*slot) xmlXPathFreeContext(*slot);
  *slot = NULL;
  return 0;
}
