/*
 * builtin.h — the built-in bindings, one file (or folder) each, written
 * against the public API (aqueue.h) and their own library only: CMake gives
 * them no other include path. builtin.c registers each opener as a
 * package.preload entry; the Lua library (lua/aqueue/) wraps them. (http is
 * built as a loadable module instead: see CMakeLists.txt.)
 */
#ifndef AQ_BUILTIN_H
#define AQ_BUILTIN_H

#include <lua.h>

/* Registers every built-in binding below in package.preload (builtin.c):
 * called by aqueue-run's main once the engine exists. */
void aq_builtin_modules_open(lua_State *L);

int aq_open_sleep(lua_State *L); /* "aqueue.sleep_core" (sleep.c) */
int aq_open_fs(lua_State *L);    /* "aqueue.fs_core"    (fs.c)    */
int aq_open_exec(lua_State *L);  /* "aqueue.exec_core"  (exec.c)  */
int aq_open_work(lua_State *L);  /* "aqueue.work_core"  (work/work.c) */
int aq_open_feed_file(lua_State *L); /* "aqueue.feed_file" (feed_file.c) */
/* "aqueue.statedb" (statedb/statedb.c): registers itself, since SQLite must
 * be configured before anything initializes it. */
void statedb_register(lua_State *L);

#endif
