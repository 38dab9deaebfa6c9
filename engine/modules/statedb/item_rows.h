/* item_rows.h — the items table of a state file (item_rows.c). */
#ifndef AQ_ITEM_ROWS_H
#define AQ_ITEM_ROWS_H

#include <lua.h>

/* statedb.add_item */
int item_rows_l_add(lua_State *L);

#endif
