/*
 * errors.h — the Lua side of errors.c: the module "aqueue.errors" (code ->
 * description of every code the built-in bindings return). The C side, for
 * bindings, is in aqueue.h ("I/O failures").
 */
#ifndef AQ_ERRORS_H
#define AQ_ERRORS_H

#include <lua.h>

/* require("aqueue.errors"), registered by core_lua_open. */
int aq_open_errors(lua_State *L);

#endif
