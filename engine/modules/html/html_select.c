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

/* The query: what to select under root. */
typedef struct {
  xmlNodePtr root;
  const char *tag;
  enum selected what;
  const char *attr_name; /* for SELECT_ATTRIBUTE */
  int links;             /* for SELECT_ELEMENTS: their html_link_attr instead */
} query;

/* The node after cur in the walk of q.root's tree (preorder, only elements
 * and the root entered), NULL at the end. */
static xmlNodePtr walk_next(const query *q, xmlNodePtr cur) {
  if ((cur == q->root || cur->type == XML_ELEMENT_NODE) && cur->children) return cur->children;
  while (cur != q->root && !cur->next) cur = cur->parent;
  return cur == q->root ? NULL : cur->next;
}

/* What node n gives: n itself (an element, a text node) or one of its
 * attributes, or NULL when it gives nothing. */
static void *selected_by(const query *q, xmlNodePtr n) {
  switch (q->what) {
  case SELECT_TEXT: /* a text child of a matching element (the root's own parent does not count) */
    if (n == q->root || (n->type != XML_TEXT_NODE && n->type != XML_CDATA_SECTION_NODE)) return NULL;
    return n->parent && is_named(n->parent, q->tag) ? n : NULL;
  case SELECT_ATTRIBUTE:
    return is_named(n, q->tag) ? (void *)attribute(n, q->attr_name) : NULL;
  case SELECT_ELEMENTS:
    if (!is_named(n, q->tag)) return NULL;
    return q->links ? (void *)html_link_attr(n) : n;
  }
  return NULL;
}

/* Pushes what selected_by gave (as html_xpath.c's eval pushes it). */
static void push_selected(lua_State *L, html_doc *d, const query *q, void *p, int mt) {
  if (q->what == SELECT_TEXT) {
    xmlNodePtr n = p;
    lua_pushstring(L, n->content ? (const char *)n->content : "");
  } else if (q->what == SELECT_ATTRIBUTE || q->links) {
    html_push_attr_value(L, p);
  } else {
    html_node_push(L, d, p, mt);
  }
}

/* select(node, tag, what, attr, first, links): what is "elements", "text"
 * or "attribute" (attr then names it). The list is made at its size (a walk
 * counts the matches first): grown one by one, it was resized at 1, 2, 4
 * and 8 entries, which cost more than the walk. */
int html_select(lua_State *L) {
  html_node *node = html_node_check(L, 1);
  query q = { node->node, luaL_checkstring(L, 2), SELECT_ELEMENTS, luaL_optstring(L, 4, NULL), lua_toboolean(L, 6) };
  const char *what_name = luaL_checkstring(L, 3);
  int first = lua_toboolean(L, 5);
  if (strcmp(what_name, "text") == 0) q.what = SELECT_TEXT;
  else if (strcmp(what_name, "attribute") == 0) q.what = SELECT_ATTRIBUTE;
  else if (strcmp(what_name, "elements") != 0) return luaL_argerror(L, 3, "\"elements\", \"text\" or \"attribute\"");
  if (q.what == SELECT_ATTRIBUTE && !q.attr_name) return luaL_argerror(L, 4, "an attribute name");
  int mt = lua_upvalueindex(1);
  void *p;
  if (first) {
    for (xmlNodePtr n = q.root; n; n = walk_next(&q, n))
      if ((p = selected_by(&q, n))) {
        push_selected(L, node->d, &q, p, mt);
        return 1;
      }
    lua_pushnil(L);
    return 1;
  }
  int count = 0;
  for (xmlNodePtr n = q.root; n; n = walk_next(&q, n))
    if (selected_by(&q, n)) count++;
  lua_createtable(L, count, 0);
  int i = 0;
  for (xmlNodePtr n = q.root; n && i < count; n = walk_next(&q, n))
    if ((p = selected_by(&q, n))) {
      push_selected(L, node->d, &q, p, mt);
      lua_rawseti(L, -2, ++i);
    }
  return 1;
}
