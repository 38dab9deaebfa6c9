/*
 * core_lua.h — the Lua module `aqueue.core` (core_lua.c): the task primitives
 * and the run lifecycle the Lua library is built on. It sits on top of the
 * engine; aqueue-run's main opens it once the engine exists.
 */
#ifndef AQ_CORE_LUA_H
#define AQ_CORE_LUA_H

#include <lua.h>

/* Registers `aqueue.core` and `aqueue.errors` in package.preload, and the
 * engine's os.exit, in the engine's main state L. */
void core_lua_open(lua_State *L);

#endif
