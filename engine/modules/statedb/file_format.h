/* file_format.h — what an aqueue SQLite file is (file_format.c). */
#ifndef AQ_FILE_FORMAT_H
#define AQ_FILE_FORMAT_H

#include <sqlite3.h>

/* Opens `path` as an aqueue file of `kind` for this process, making it one
 * when it is new or empty. Returns NULL and the connection in *conn, or a
 * message (sqlite3_mprintf) saying why not; the file is then left as it was. */
char *file_format_open(const char *path, const char *kind, sqlite3 **conn);

#endif
