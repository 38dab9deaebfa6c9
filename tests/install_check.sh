#!/usr/bin/env bash
# `cmake --install` gives an aqueue-run that finds its Lua library by itself,
# from the installed prefix (not the source tree), and keeps working when the
# prefix is moved: no environment variable involved.
#   tests/install_check.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -x "$tmp/prefix/bin/aqueue-run" || { echo "FAIL: no bin/aqueue-run installed"; exit 1; }
test -f "$tmp/prefix/include/aqueue.h" || { echo "FAIL: no include/aqueue.h installed"; exit 1; }
mv "$tmp/prefix" "$tmp/moved"

cat > "$tmp/where.lua" <<'LUA'
local aqueue = require("aqueue")
print(package.searchpath("aqueue", package.path))
local P = aqueue.Item:extend("P")
function P:process() aqueue.sleep(0.01) return 1 end
local s = aqueue.run_queue{ initial_items = { P{}, P{} } }
print("processed", s.processed)
-- the HTTP, Redis and HTML bindings are loadable modules: they must come from the prefix too
print(package.searchpath("aqueue.http_core", package.cpath))
local res, err = aqueue.http.get("http://127.0.0.1:1/")
print("http", res, err ~= nil)
print(package.searchpath("aqueue.redis_core", package.cpath))
local client, _, code = aqueue.redis.connect("redis://127.0.0.1:1")
print("redis", client, code)
local doc = aqueue.html.parse("<ul><li>a<li>b</ul>")
print(package.searchpath("aqueue.html_core", package.cpath))
print("html", #doc:css("li"))
LUA
out=$(cd "$tmp" && env -u LUA_PATH -u LUA_PATH_5_1 "$tmp/moved/bin/aqueue-run" where.lua 2>/dev/null)
case "$out" in
  "$tmp/moved/bin/../share/aqueue/lua/aqueue/init.lua"*"processed	2"*"$tmp/moved/bin/../lib/"*"aqueue/modules/aqueue/http_core.so"*"http	nil	true"*"$tmp/moved/bin/../lib/"*"aqueue/modules/aqueue/redis_core.so"*"redis	nil	ECONNREFUSED"*"$tmp/moved/bin/../lib/"*"aqueue/modules/aqueue/html_core.so"*"html	2"*)
    echo "ok: installed aqueue-run uses $tmp/moved/share/aqueue/lua and its modules folder" ;;
  *) echo "FAIL: unexpected output from the installed aqueue-run:"; echo "$out"; exit 1 ;;
esac
case "$out" in *"$root/lua"*) echo "FAIL: the installed binary used the source tree"; exit 1 ;; esac
