/*
 * html_node.c — what a node tells: node.tag, node:text(), node:attr(name),
 * node:html(), and the document's base URL (for links()). Every string
 * returned is UTF-8, whatever the page's charset was: libxml2 keeps its tree
 * in UTF-8.
 */
#include <ctype.h>
#include <string.h>

#include <lauxlib.h>
#include <libxml/HTMLtree.h>

#include "html.h"

/* Pushes s (from libxml2's allocator) or "" for NULL, and frees s. */
static void push_owned(lua_State *L, xmlChar *s) {
  lua_pushstring(L, s ? (const char *)s : "");
  if (s) xmlFree(s);
}

int html_node_index(lua_State *L) {
  html_node *n = lua_touserdata(L, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isnil(L, -1)) return 1;
  const char *key = lua_tostring(L, 2);
  if (key && strcmp(key, "tag") == 0 && n->node && n->node->type == XML_ELEMENT_NODE) {
    lua_pushstring(L, (const char *)n->node->name);
    return 1;
  }
  return 1; /* nil: no such field (the document has no tag) */
}

/* node:text(): the text of the node and of everything inside it, joined (as
 * XPath's string() and lxml's text_content()). */
int html_node_text(lua_State *L) {
  html_node *n = html_node_check(L, 1);
  push_owned(L, xmlNodeGetContent(n->node));
  return 1;
}

void html_push_attr_value(lua_State *L, xmlAttrPtr a) {
  xmlNodePtr c = a->children;
  if (!c) lua_pushliteral(L, "");
  else if (c->type == XML_TEXT_NODE && !c->next) lua_pushstring(L, (const char *)c->content); /* the usual case: no copy */
  else push_owned(L, xmlNodeGetContent((xmlNodePtr)a));
}

xmlAttrPtr html_link_attr(xmlNodePtr n) {
  xmlAttrPtr a = xmlHasProp(n, BAD_CAST "href");
  return a ? a : xmlHasProp(n, BAD_CAST "src");
}

/* node:attr(name): the attribute's value ("" for an attribute written without
 * one), or nil. Names are matched in lower case, as HTML's are. */
int html_node_attr(lua_State *L) {
  html_node *n = html_node_check(L, 1);
  size_t len;
  const char *name = luaL_checklstring(L, 2, &len);
  if (n->node->type != XML_ELEMENT_NODE) return 0;
  char small[64];
  luaL_Buffer b;
  const char *lower = small;
  if (len < sizeof small) {
    for (size_t i = 0; i <= len; i++) small[i] = (char)tolower((unsigned char)name[i]);
  } else {
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) luaL_addchar(&b, (char)tolower((unsigned char)name[i]));
    luaL_pushresult(&b);
    lower = lua_tostring(L, -1);
  }
  xmlAttrPtr a = xmlHasProp(n->node, (const xmlChar *)lower);
  if (!a) return 0;
  html_push_attr_value(L, a);
  return 1;
}

/* node:html(): the node's outer HTML (the document's whole HTML), in UTF-8. */
int html_node_html(lua_State *L) {
  html_node *n = html_node_check(L, 1);
  if (!n->node->children && n->node->type != XML_ELEMENT_NODE) { /* an empty document (libxml2 writes "\n") */
    lua_pushliteral(L, "");
    return 1;
  }
  xmlBufferPtr buf = xmlBufferCreate();
  if (!buf) return luaL_error(L, "aqueue.html: out of memory");
  xmlOutputBufferPtr out = xmlOutputBufferCreateBuffer(buf, xmlFindCharEncodingHandler("UTF-8"));
  if (!out) {
    xmlBufferFree(buf);
    return luaL_error(L, "aqueue.html: out of memory");
  }
  if (n->node->type == XML_ELEMENT_NODE) htmlNodeDumpFormatOutput(out, n->d->doc, n->node, "UTF-8", 0);
  else htmlDocContentDumpFormatOutput(out, n->d->doc, "UTF-8", 0);
  xmlOutputBufferFlush(out);
  int failed = out->error != 0;
  xmlOutputBufferClose(out); /* leaves buf */
  if (!failed) lua_pushlstring(L, (const char *)xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
  xmlBufferFree(buf);
  if (failed) return luaL_error(L, "aqueue.html: out of memory");
  return 1;
}

/* The first element <base> with an href in the tree under `root`, in
 * document order (XPath's "/descendant::base[@href][1]"), or NULL. Only
 * elements are entered (not a doctype's declarations). */
static xmlNodePtr first_base_element(xmlNodePtr root) {
  xmlNodePtr cur = root->children;
  while (cur) {
    if (cur->type == XML_ELEMENT_NODE) {
      if (xmlStrEqual(cur->name, BAD_CAST "base") && xmlHasProp(cur, BAD_CAST "href")) return cur;
      if (cur->children) {
        cur = cur->children;
        continue;
      }
    }
    while (!cur->next) {
      cur = cur->parent;
      if (!cur || cur == root) return NULL;
    }
    cur = cur->next;
  }
  return NULL;
}

/* base_url(node) -> the base_url the document was parsed with (or nil), the
 * href of the document's first <base href> (or nil). The href is looked up
 * once per document: links() asks for every call. */
int html_node_base_url(lua_State *L) {
  html_node *n = html_node_check(L, 1);
  html_doc *d = n->d;
  if (!d->base_href_known) {
    xmlNodePtr base = first_base_element((xmlNodePtr)d->doc);
    d->base_href = base ? xmlGetProp(base, BAD_CAST "href") : NULL;
    if (base && !d->base_href) return luaL_error(L, "aqueue.html: out of memory");
    d->base_href_known = 1;
  }
  const xmlChar *url = d->doc->URL;
  if (url) lua_pushstring(L, (const char *)url);
  else lua_pushnil(L);
  if (d->base_href) lua_pushstring(L, (const char *)d->base_href);
  else lua_pushnil(L);
  return 2;
}
