/*
 * bindings.h — the built-in yielding bindings, one file each, written against
 * the public API (aqueue.h) only. modules.c registers each opener as a
 * package.preload entry; the Lua library (lua/aqueue/) wraps them. (http.c is
 * built as a loadable module instead: see CMakeLists.txt.)
 */
#ifndef AQ_BINDINGS_H
#define AQ_BINDINGS_H

#include <lua.h>

int aq_open_fs(lua_State *L);   /* "aqueue.fs_core"   (fs.c)   */
int aq_open_exec(lua_State *L); /* "aqueue.exec_core" (exec.c) */
int aq_open_work(lua_State *L); /* "aqueue.work_core" (work.c) */
int aq_open_errors(lua_State *L); /* "aqueue.errors" (errors.c) */

#endif
