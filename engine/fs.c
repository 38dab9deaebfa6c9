/* fs.c — aqueue.fs (to be written). */
#include <lua.h>

#include "bindings.h"

int aq_open_fs(lua_State *L) {
  lua_newtable(L);
  return 1;
}
