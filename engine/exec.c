/* exec.c — aqueue.exec (to be written). */
#include <lua.h>

#include "bindings.h"

int aq_open_exec(lua_State *L) {
  lua_newtable(L);
  return 1;
}
