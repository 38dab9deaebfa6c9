# scripts/lib/setup.sh — sourced by scripts/run and scripts/test: installs the
# Debian packages aqueue needs when any is missing, then configures and builds
# into build/ (incrementally: a second run only rebuilds what changed).

AQUEUE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
AQUEUE_BUILD="$AQUEUE_ROOT/build"

# Build tools, LuaJIT, libuv, lua-cjson, libcurl, SQLite, busted (the test runner), and
# what the tests, examples and benchmarks drive: nginx (a local site to crawl;
# setpriv from util-linux ties it to its parent, openssl makes its test
# certificate), wrk (the HTTP reference), python3 (the asyncio references),
# tmux (terminal tests), zlib and brotli (HTTP bodies; zlib for the example C module too), hiredis (the Redis protocol
# of aqueue.redis), redis-server (the tests and benchmarks start their own, with
# redis-benchmark as the reference), libxml2 (aqueue.html's parser and XPath) and
# python3-parsel (the reference of the HTML benchmark).
AQUEUE_PACKAGES=(
  build-essential cmake pkg-config
  luajit libluajit-5.1-dev libuv1-dev lua-cjson lua-cjson-dev libcurl4-openssl-dev libsqlite3-dev lua-busted zlib1g-dev libbrotli-dev
  libhiredis-dev redis-server libxml2-dev python3-parsel
  nginx-light util-linux openssl ca-certificates wrk python3 tmux procps time
)

aqueue_missing_packages() {
  local pkg
  for pkg in "${AQUEUE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

aqueue_install_packages() {
  local missing
  missing=$(aqueue_missing_packages)
  [ -z "$missing" ] && return 0
  echo "aqueue: installing Debian packages:" $missing >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >&2
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
}

aqueue_build() {
  aqueue_install_packages || return 1
  if [ ! -f "$AQUEUE_BUILD/CMakeCache.txt" ]; then
    cmake -S "$AQUEUE_ROOT" -B "$AQUEUE_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2 || return 1
  fi
  cmake --build "$AQUEUE_BUILD" -j"$(nproc)" >&2
}
