/* modules.c — makes the built-in bindings loadable with require. */
#include "bindings.h"
#include "engine.h"
#include "statedb.h"

void modules_open(lua_State *L) {
  aq_register_module(L, "aqueue.fs_core", aq_open_fs);
  aq_register_module(L, "aqueue.exec_core", aq_open_exec);
  aq_register_module(L, "aqueue.work_core", aq_open_work);
  aq_register_module(L, "aqueue.errors", aq_open_errors);
  statedb_register(L); /* "aqueue.statedb" (statedb.c) */
}
