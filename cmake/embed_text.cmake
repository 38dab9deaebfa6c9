# Writes a C file that holds a text file as a string, at build time:
#   cmake -DINPUT=<file> -DOUTPUT=<file.c> -DNAME=<symbol> -DSHOWN=<name in the comment> -P embed_text.cmake
# defines `const char NAME[]` (NUL-terminated). The engine embeds the headers
# that are the only copy of its FFI declarations (engine/core/core_ffi.h,
# engine/modules/statedb/statedb_ffi.h) and hands the text to ffi.cdef, so the
# compiler and LuaJIT read the same declarations. Bytes, not a string literal:
# no escaping to get wrong.
foreach(var INPUT OUTPUT NAME SHOWN)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_text.cmake: -D${var}= is missing")
  endif()
endforeach()
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPLACE "0x0a," "0x0a,\n  " bytes "${bytes}") # a line of the header per line
set(text "/* ${SHOWN} as text, embedded by cmake/embed_text.cmake at build time: do not edit. */\n")
string(APPEND text "const char ${NAME}[] = {\n  ${bytes}0x00};\n")
file(WRITE "${OUTPUT}" "${text}")
