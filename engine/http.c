/* http.c — aqueue.http (to be written). */
#include <lua.h>

#include "bindings.h"

int aq_open_http(lua_State *L) {
  lua_newtable(L);
  return 1;
}
