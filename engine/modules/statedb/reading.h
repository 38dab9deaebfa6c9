/* reading.h — db:rows() and db:exec() (reading.c). */
#ifndef AQ_READING_H
#define AQ_READING_H

#include <lua.h>

/* The metatable of db:rows() iterators. */
void reading_register(lua_State *L);
int reading_l_rows(lua_State *L);
int reading_l_exec(lua_State *L);

#endif
