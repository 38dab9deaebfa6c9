/* builtin.c — makes the built-in bindings loadable with require. */
#include "aqueue.h"
#include "builtin.h"

void aq_builtin_modules_open(lua_State *L) {
  aq_register_module(L, "aqueue.sleep_core", aq_open_sleep);
  aq_register_module(L, "aqueue.fs_core", aq_open_fs);
  aq_register_module(L, "aqueue.exec_core", aq_open_exec);
  aq_register_module(L, "aqueue.work_core", aq_open_work);
  aq_register_module(L, "aqueue.feed_file", aq_open_feed_file);
  statedb_register(L);
}
