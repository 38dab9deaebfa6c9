/* modules.c — makes the built-in bindings loadable with require. */
#include <lauxlib.h>

#include "bindings.h"
#include "engine.h"

void modules_open(lua_State *L) {
  static const luaL_Reg modules[] = {
      {"aqueue.fs_core", aq_open_fs},
      {"aqueue.exec_core", aq_open_exec},
      {"aqueue.work_core", aq_open_work},
      {NULL, NULL},
  };
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  for (const luaL_Reg *m = modules; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 2);
}
