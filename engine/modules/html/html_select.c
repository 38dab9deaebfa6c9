/*
 * html_select.c — the simplest CSS selectors by a walk of the tree: a tag
 * (`img`), its text (`title::text`) and one of its attributes
 * (`a::attr(href)`), which are most of what crawls select and what links()
 * looks for. lua/aqueue/html.lua sends a selector here when its XPath
 * translation is exactly one of
 *
 *   descendant-or-self::TAG            the elements
 *   descendant-or-self::TAG/text()     their text and CDATA children
 *   descendant-or-self::TAG/@NAME      their attribute NAME
 *
 * and the walk gives what libxml2's XPath gives for it, in the same order
 * (tests/spec/html_spec.lua holds the two side by side): XPath builds a node
 * set at each step, sorts and merges it, and on a small page cost 5k
 * instructions a query, five times the walk.
 *
 * Document order is the walk's preorder: an element comes before its
 * attributes and its children, and a text child comes when it is reached,
 * so the text of an element nested in another element of the same tag falls
 * between its outer one's. Names are compared as XPath compares them:
 * exactly (the HTML parser lower-cases tags and attribute names, and so does
 * the CSS translation), and only for nodes without a namespace.
 */
#include <string.h>

#include <lauxlib.h>

#include "html.h"

enum selected { SELECT_ELEMENTS, SELECT_TEXT, SELECT_ATTRIBUTE };

static int is_named(xmlNodePtr n, const char *tag) {
  return n->type == XML_ELEMENT_NODE && n->ns == NULL && strcmp((const char *)n->name, tag) == 0;
}

static xmlAttrPtr attribute(xmlNodePtr n, const char *name) {
  for (xmlAttrPtr a = n->properties; a; a = a->next)
    if (a->ns == NULL && strcmp((const char *)a->name, name) == 0) return a;
  return NULL;
}

/* Pushes what `n` gives (as html_xpath.c's eval would: a node object, the
 * text, the attribute's value; for links, an element's href, else its src)
 * and returns 1, or returns 0 when it gives nothing. */
static int push_selected(lua_State *L, html_doc *d, xmlNodePtr n, enum selected what, const char *attr_name,
                         int links, int mt) {
  switch (what) {
  case SELECT_TEXT:
    if (n->type != XML_TEXT_NODE && n->type != XML_CDATA_SECTION_NODE) return 0;
    lua_pushstring(L, n->content ? (const char *)n->content : "");
    return 1;
  case SELECT_ATTRIBUTE: {
    xmlAttrPtr a = attribute(n, attr_name);
    if (!a) return 0;
    html_push_attr_value(L, a);
    return 1;
  }
  case SELECT_ELEMENTS:
    if (links) {
      xmlAttrPtr a = attribute(n, "href");
      if (!a) a = attribute(n, "src");
      if (!a) return 0;
      html_push_attr_value(L, a);
      return 1;
    }
    html_node_push(L, d, n, mt);
    return 1;
  }
  return 0;
}

/* select(node, tag, what, attr, first, links): what is "elements", "text"
 * or "attribute" (attr then names it). */
int html_select(lua_State *L) {
  html_node *node = html_node_check(L, 1);
  const char *tag = luaL_checkstring(L, 2);
  const char *what_name = luaL_checkstring(L, 3);
  const char *attr_name = luaL_optstring(L, 4, NULL);
  int first = lua_toboolean(L, 5);
  int links = lua_toboolean(L, 6);
  enum selected what = SELECT_ELEMENTS;
  if (strcmp(what_name, "text") == 0) what = SELECT_TEXT;
  else if (strcmp(what_name, "attribute") == 0) what = SELECT_ATTRIBUTE;
  else if (strcmp(what_name, "elements") != 0) return luaL_argerror(L, 3, "\"elements\", \"text\" or \"attribute\"");
  if (what == SELECT_ATTRIBUTE && !attr_name) return luaL_argerror(L, 4, "an attribute name");
  int mt = lua_upvalueindex(1);
  if (!first) lua_newtable(L);
  int count = 0;
  xmlNodePtr root = node->node, cur = root;
  while (cur) {
    /* the element itself for elements and attributes; for text, the
     * children of a matching element (the root's own parent does not count) */
    xmlNodePtr candidate = NULL;
    if (what == SELECT_TEXT) {
      if (cur != root && cur->parent && is_named(cur->parent, tag)) candidate = cur;
    } else if (is_named(cur, tag)) {
      candidate = cur;
    }
    if (candidate && push_selected(L, node->d, candidate, what, attr_name, links, mt)) {
      if (first) return 1;
      lua_rawseti(L, -2, ++count);
    }
    /* only elements (and the root) are entered */
    if ((cur == root || cur->type == XML_ELEMENT_NODE) && cur->children) {
      cur = cur->children;
      continue;
    }
    while (cur != root && !cur->next) cur = cur->parent;
    cur = cur == root ? NULL : cur->next;
  }
  if (first) lua_pushnil(L);
  return 1;
}
