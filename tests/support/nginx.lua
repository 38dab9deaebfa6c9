-- Test support: the private nginx on 127.0.0.1 that ships with the examples
-- (examples/lib/nginx.lua, where its options are described), for the specs and
-- benchmarks. One copy: the tests use the examples' own.
--   local nginx = require("tests.support.nginx")
--   local server = nginx.start{ root = dir }   ...   server:stop()
return require("examples.lib.nginx")
