/*
 * html_module.c — aqueue.html_core, the Lua side of the C: parse(),
 * parse_in_pool(), compile(), eval(), select(), base_url() and the node metatable,
 * whose `methods` table lua/aqueue/html.lua completes (css, xpath, links, ...).
 * This folder is built as its own loadable module (see CMakeLists.txt), so
 * libxml2 is loaded only by scripts that parse HTML; the files and who owns
 * what: html.h.
 */

#include <lauxlib.h>
#include <libxml/xmlversion.h>

#include "html.h"



AQ_EXPORT int luaopen_aqueue_html_core(lua_State *L) {
  AQ_MODULE_CHECK(L, "aqueue.html_core");
  /* loaded until the process ends: the pool threads outlive the Lua state
   * with libxml2's per-thread state, whose destructor runs at their exit */
  aq_module_keep_loaded((const void *)luaopen_aqueue_html_core);
  html_arena_install(); /* before libxml2 allocates anything */
  xmlInitParser();      /* on the loop thread, before any pool thread parses */
  html_quiet_thread();

  luaL_newmetatable(L, HTML_XPATH_MT);
  lua_pushcfunction(L, html_xpath_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  luaL_newmetatable(L, HTML_NODE_MT);
  int mt = lua_gettop(L);
  static const luaL_Reg methods[] = {
      {"text", html_node_text},
      {"attr", html_node_attr},
      {"html", html_node_html},
      {NULL, NULL},
  };
  lua_newtable(L);
  luaL_register(L, NULL, methods);
  int methods_index = lua_gettop(L);
  lua_pushvalue(L, methods_index);
  lua_pushcclosure(L, html_node_index, 1);
  lua_setfield(L, mt, "__index");
  lua_pushcfunction(L, html_node_gc);
  lua_setfield(L, mt, "__gc");
  lua_pushcfunction(L, html_node_eq);
  lua_setfield(L, mt, "__eq");
  lua_pushcfunction(L, html_node_tostring);
  lua_setfield(L, mt, "__tostring");
  lua_pushliteral(L, "aqueue.html.node");
  lua_setfield(L, mt, "__metatable"); /* getmetatable(node) cannot reach the C's table */

  static const luaL_Reg functions[] = {
      {"parse", html_l_parse},
      {"parse_in_pool", html_l_parse_in_pool},
      {"compile", html_xpath_compile},
      {"base_url", html_node_base_url},
      {"live_documents", html_l_live_documents},
      {NULL, NULL},
  };
  lua_newtable(L);
  luaL_register(L, NULL, functions);
  lua_pushvalue(L, mt);
  html_xpath_context_new(L);
  lua_pushcclosure(L, html_xpath_eval, 2);
  lua_setfield(L, -2, "eval");
  lua_pushvalue(L, mt);
  lua_pushcclosure(L, html_select, 1);
  lua_setfield(L, -2, "select");
  lua_pushvalue(L, methods_index);
  lua_setfield(L, -2, "methods");
  lua_pushstring(L, LIBXML_DOTTED_VERSION);
  lua_setfield(L, -2, "libxml2_version");
  return 1;
}
