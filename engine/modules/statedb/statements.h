/* statements.h — writes through db:prepare() statements (statements.c). */
#ifndef AQ_STATEMENTS_H
#define AQ_STATEMENTS_H

#include <lua.h>

int statements_l_prepare(lua_State *L);
int statements_l_write(lua_State *L);

#endif
