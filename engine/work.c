/* work.c — aqueue.work (to be written). */
#include <lua.h>

#include "bindings.h"

int aq_open_work(lua_State *L) {
  lua_newtable(L);
  return 1;
}
