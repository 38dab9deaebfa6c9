-- aqueue.url: URLs on libcurl's URL API. join resolves references as RFC 3986
-- section 5.2 says (every example of section 5.4 below, including those curl
-- 7.88's curl_url alone gets wrong); parse and build are each other's
-- inverse; a URL curl cannot read is nil, "EINVAL: ...", "EINVAL"; a wrong
-- argument type raises.
local aqueue = require("aqueue")
local url = aqueue.url

-- RFC 3986 section 5.4: the base, and each reference with its target.
local BASE = "http://a/b/c/d;p?q"

local NORMAL = { -- 5.4.1
  { "g:h", "g:h" },
  { "g", "http://a/b/c/g" },
  { "./g", "http://a/b/c/g" },
  { "g/", "http://a/b/c/g/" },
  { "/g", "http://a/g" },
  { "//g", "http://g/" }, -- curl writes the empty path of an authority as "/" (RFC 3986 6.2.3)
  { "?y", "http://a/b/c/d;p?y" },
  { "g?y", "http://a/b/c/g?y" },
  { "#s", "http://a/b/c/d;p?q#s" },
  { "g#s", "http://a/b/c/g#s" },
  { "g?y#s", "http://a/b/c/g?y#s" },
  { ";x", "http://a/b/c/;x" },
  { "g;x", "http://a/b/c/g;x" },
  { "g;x?y#s", "http://a/b/c/g;x?y#s" },
  { "", "http://a/b/c/d;p?q" },
  { ".", "http://a/b/c/" },
  { "./", "http://a/b/c/" },
  { "..", "http://a/b/" },
  { "../", "http://a/b/" },
  { "../g", "http://a/b/g" },
  { "../..", "http://a/" },
  { "../../", "http://a/" },
  { "../../g", "http://a/g" },
}

local ABNORMAL = { -- 5.4.2
  { "../../../g", "http://a/g" },
  { "../../../../g", "http://a/g" },
  { "/./g", "http://a/g" },
  { "/../g", "http://a/g" },
  { "g.", "http://a/b/c/g." },
  { ".g", "http://a/b/c/.g" },
  { "g..", "http://a/b/c/g.." },
  { "..g", "http://a/b/c/..g" },
  { "./../g", "http://a/b/g" },
  { "./g/.", "http://a/b/c/g/" },
  { "g/./h", "http://a/b/c/g/h" },
  { "g/../h", "http://a/b/c/h" },
  { "g;x=1/./y", "http://a/b/c/g;x=1/y" },
  { "g;x=1/../y", "http://a/b/c/y" },
  { "g?y/./x", "http://a/b/c/g?y/./x" },
  { "g?y/../x", "http://a/b/c/g?y/../x" },
  { "g#s/./x", "http://a/b/c/g#s/./x" },
  { "g#s/../x", "http://a/b/c/g#s/../x" },
  { "http:g", "http:g" }, -- "for strict parsers" (the RFC's choice: a scheme makes it absolute)
}

-- Asserts the shape of a failure and returns the message.
local function assert_einval(ok, err, code)
  assert.is_nil(ok)
  assert.are.equal("EINVAL", code, tostring(err))
  assert.are.equal("EINVAL: invalid argument: ", err:sub(1, 26))
  return err
end

describe("url.join resolves RFC 3986's examples", function()
  it("has all 42 of section 5.4", function()
    assert.are.equal(23, #NORMAL)
    assert.are.equal(19, #ABNORMAL)
  end)
  for _, set in ipairs{ { "5.4.1", NORMAL }, { "5.4.2", ABNORMAL } } do
    for _, case in ipairs(set[2]) do
      it(("%s %q -> %s"):format(set[1], case[1], case[2]), function()
        assert.are.equal(case[2], url.join(BASE, case[1]))
      end)
    end
  end
end)

describe("url.join", function()
  it("keeps the base's query for a fragment, and drops the base's fragment", function()
    assert.are.equal("http://a/b?q#", url.join("http://a/b?q#f", "#"))
    assert.are.equal("http://a/b?q#t", url.join("http://a/b?q#f", "#t"))
    assert.are.equal("http://a/b?q", url.join("http://a/b?q#f", ""))
    assert.are.equal("http://a/g", url.join("http://a/b?q#f", "g"))
  end)

  it("takes a reference with a scheme as it is, dot segments removed", function()
    assert.are.equal("mailto:someone@example.com", url.join(BASE, "mailto:someone@example.com"))
    assert.are.equal("foo:a/c?x#y", url.join(BASE, "foo:a/./b/../c?x#y"))
    assert.are.equal("https://other/x/z", url.join(BASE, "https://other/x/y/../z"))
    assert.are.equal("ftp://f/y", url.join(BASE, "ftp://f/../y"))
    assert.are.equal("http://x/a", url.join(BASE, "HTTP://x/a"))
    assert.are.equal("g:h", url.join("not a base", "g:h"), "the base is not used")
  end)

  it("resolves a protocol-relative reference with the base's scheme", function()
    assert.are.equal("https://h/p", url.join("https://a/b", "//h/p"))
    assert.are.equal("http://h:8080/p?q", url.join("http://a/b", "//h:8080/p?q"))
  end)

  it("stops .. at the root", function()
    assert.are.equal("http://a/x/y", url.join("http://a/b", "../../../../x/./y"))
    assert.are.equal("http://a/", url.join("http://a/", ".."))
  end)

  it("keeps ports, user and password of the base", function()
    assert.are.equal("http://u:pw@a:8080/b/g", url.join("http://u:pw@a:8080/b/c", "g"))
    assert.are.equal("http://a:81/g", url.join("http://a:81", "g"))
  end)

  it("encodes spaces and non-ASCII bytes the same way in every part and form", function()
    assert.are.equal("http://a/b/g%20h?a%20b#c%20d", url.join("http://a/b/c", "g h?a b#c d"))
    assert.are.equal("http://x/g%20h?a%20b#c%20d", url.join("http://a/b/c", "http://x/g h?a b#c d"))
    assert.are.equal("http://a/b/c#c%20d", url.join("http://a/b/c", "#c d"))
    assert.are.equal("http://a/%C3%A9t%C3%A9?q=%C3%A9", url.join("http://a/b", "été?q=é"))
    assert.are.equal("http://a/b%20c/g", url.join("http://a/b c/d", "g"), "a base with spaces")
  end)

  it("leaves percent-encoded bytes as they are", function()
    assert.are.equal("http://a/x%2Fy?q=%26", url.join("http://a/b", "x%2Fy?q=%26"))
  end)

  it("joins many references to one base, and to the next base", function()
    for i = 1, 3 do
      assert.are.equal("http://a/" .. i, url.join("http://a/b", tostring(i)))
    end
    assert.are.equal("http://z/1", url.join("http://z/b", "1"))
    assert.are.equal("http://a/1", url.join("http://a/b", "1"))
  end)

  it("does not keep a base it could not read", function()
    assert.are.equal("http://a/g", url.join("http://a/b", "g"))
    assert_einval(url.join("http://a b", "g")) -- as long as the good one
    assert_einval(url.join("http://a b", "g")) -- as long as the good one
    assert.are.equal("http://a/h", url.join("http://a/b", "h"))
  end)

  it("joins a 10 kB URL, and quotes only its start in a message", function()
    local long = "http://a/" .. ("x"):rep(10000)
    assert.are.equal("http://a/g", url.join(long, "g"))
    assert.are.equal(long .. "?q", url.join(long, "?q"))
    local err = assert_einval(url.join(long, "a\tb"))
    assert.matches("a\tb joined to http://a/xxx", err, 1, true)
    assert.matches("... (10009 bytes) (Bad path)", err, 1, true)
    assert.is_true(#err < 400, err)
  end)

  it("returns nil, err for a base or reference curl cannot read", function()
    assert.matches('base "" %(', assert_einval(url.join("", "g")))
    assert.matches("base a/b %(", assert_einval(url.join("a/b", "g")))
    assert.matches("http:// (No host part in the URL)", assert_einval(url.join(BASE, "http://")), 1, true)
    assert.matches("http://h:99999/ (Port number", assert_einval(url.join(BASE, "http://h:99999/")), 1, true)
    assert.matches("invalid argument: a (a NUL byte in the URL)", assert_einval(url.join(BASE, "a\0b")), 1, true)
    assert.matches("base mailto:x (", assert_einval(url.join("mailto:x", "g")), 1, true)
  end)

  it("raises on arguments that are not strings", function()
    assert.has_error(function() url.join(nil, "g") end, "aqueue.url.join: the base must be a string, got nil")
    assert.has_error(function() url.join(BASE, 42) end, "aqueue.url.join: the reference must be a string, got number")
    local ok, err = pcall(url.join, BASE, {})
    assert.is_false(ok)
    assert.matches("url_spec.lua:%d+: aqueue.url.join:", select(2, pcall(function() url.join(BASE, {}) end)))
    assert.is_string(err)
  end)
end)

describe("url.parse", function()
  it("gives every part, the port as a number", function()
    assert.are.same({
      scheme = "https", user = "u", password = "p%40ss", host = "example.com", port = 8443,
      path = "/a/b", query = "x=1&y=%20", fragment = "top",
    }, url.parse("https://u:p%40ss@example.com:8443/a/b?x=1&y=%20#top"))
  end)

  it("leaves absent parts nil", function()
    assert.are.same({ scheme = "http", host = "a", path = "/" }, url.parse("http://a"))
    assert.are.same({ scheme = "http", host = "a", path = "/p" }, url.parse("http://a/p?"), "curl drops an empty query")
    assert.are.same({ scheme = "http", host = "a", path = "/", user = "u" }, url.parse("http://u@a/"))
  end)

  it("gives an IPv6 host in brackets, an IDN host in UTF-8 as written", function()
    assert.are.same({ scheme = "http", host = "[::1]", port = 8080, path = "/" }, url.parse("http://[::1]:8080/"))
    assert.are.equal("bücher.example", url.parse("http://bücher.example/").host)
    assert.are.equal("xn--bcher-kva.example", url.parse("http://xn--bcher-kva.example/").host)
  end)

  it("encodes spaces and non-ASCII bytes after the host", function()
    local p = url.parse("http://bücher.example/a b?q=é #f g")
    assert.are.equal("bücher.example", p.host)
    assert.are.equal("/a%20b", p.path)
    assert.are.equal("q=%C3%A9%20", p.query)
    assert.are.equal("f%20g", p.fragment)
  end)

  it("reads a 10 kB URL", function()
    assert.are.equal(10001, #url.parse("http://a/" .. ("x"):rep(10000)).path)
  end)

  it("returns nil, err for what is not an absolute URL", function()
    assert.matches("http:// (No host part in the URL)", assert_einval(url.parse("http://")), 1, true)
    assert_einval(url.parse(""))
    assert_einval(url.parse("/just/a/path"))
    assert_einval(url.parse("//host/p"))
    assert_einval(url.parse("http://a b/"))
    assert_einval(url.parse("http://a:x/"))
  end)

  it("raises on a url that is not a string", function()
    assert.has_error(function() url.parse(nil) end, "aqueue.url.parse: the url must be a string, got nil")
  end)
end)

describe("url.build", function()
  it("is the inverse of parse", function()
    for _, u in ipairs{
      "https://u:p%40ss@example.com:8443/a/b?x=1&y=%20#top",
      "http://a/",
      "http://[::1]:8080/p?x",
      "http://u@h/%3d%3D",
      "ftp://files.example/pub/x.tar.gz",
      "http://bücher.example/%C3%A9t%C3%A9?q=%C3%A9",
    } do
      local parts = assert(url.parse(u))
      assert.are.equal(u, url.build(parts))
      assert.are.same(parts, url.parse(url.build(parts)))
    end
  end)

  it("builds from parts, encoding spaces and non-ASCII bytes", function()
    assert.are.equal("https://h:81/a%20b?q=%C3%A9#f%20g",
      url.build{ scheme = "https", host = "h", port = 81, path = "/a b", query = "q=é", fragment = "f g" })
    assert.are.equal("http://h/x", url.build{ scheme = "http", host = "h", path = "x" })
  end)

  it("round-trips a query through url.query and url.decode", function()
    local q = url.query{ q = "a b&c=d/é", n = 5 }
    local u = url.build{ scheme = "http", host = "h", path = "/s", query = q }
    assert.are.equal("http://h/s?n=5&q=a%20b%26c%3Dd%2F%C3%A9", u)
    local back = {}
    for k, v in url.parse(u).query:gmatch("([^&=]+)=([^&]*)") do back[url.decode(k)] = url.decode(v) end
    assert.are.same({ q = "a b&c=d/é", n = "5" }, back)
  end)

  it("returns nil, err for parts curl refuses, naming the part", function()
    assert.matches("url part port = 70000 (Port number", assert_einval(url.build{ scheme = "http", host = "h", port = 70000 }), 1, true)
    assert.matches("url part host = a b (Bad hostname)", assert_einval(url.build{ scheme = "http", host = "a b" }), 1, true)
    assert.matches("cannot build a URL of these parts (No host part", assert_einval(url.build{ scheme = "http" }), 1, true)
    assert.matches("(No scheme part", assert_einval(url.build{ host = "h" }), 1, true)
  end)

  it("raises on misuse", function()
    assert.has_error(function() url.build("http://a") end, "aqueue.url.build: the parts must be a table, got string")
    assert.has_error(function() url.build{ scheme = "http", hostname = "a" } end,
      "aqueue.url.build: unknown part 'hostname' (parts: scheme, user, password, host, port, path, query, fragment)")
    assert.has_error(function() url.build{ scheme = "http", host = "a", port = "80" } end,
      "aqueue.url.build: part 'port' must be a number, got string")
    assert.has_error(function() url.build{ scheme = 1, host = "a" } end,
      "aqueue.url.build: part 'scheme' must be a string, got number")
  end)
end)

describe("url.encode and url.decode", function()
  it("encode keeps RFC 3986's unreserved characters only", function()
    assert.are.equal("AZaz09-._~", url.encode("AZaz09-._~"))
    assert.are.equal("%20%21%23%24%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D%25", url.encode(" !#$&'()*+,/:;=?@[]%"))
    assert.are.equal("%C3%A9%00%FF", url.encode("é\0\255"))
    assert.are.equal("", url.encode(""))
  end)

  it("decode reverses encode for every byte", function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all)
    assert.are.equal(all, url.decode(url.encode(all)))
    assert.are.equal("a b+c%zz%", url.decode("a%20b+c%zz%"))
    assert.are.equal("", url.decode(""))
  end)

  it("raise on what is not a string", function()
    assert.has_error(function() url.encode(5) end, "aqueue.url.encode: the text must be a string, got number")
    assert.has_error(function() url.decode(nil) end, "aqueue.url.decode: the text must be a string, got nil")
  end)
end)

describe("url.join's shortcut for plain paths", function()
  -- A reference like "/page/2.html" is joined without curl (the base's
  -- "scheme://authority" + the reference): it must give what curl gives.
  local through_curl = require("aqueue.url_core").join_through_curl
  local BASES = { "http://a/b/c/d;p?q", "https://u:pw@Example.COM:8443/x/y?z#f", "http://a:80", "HTTP://A/b",
    "http://[::1]:81/p", "ftp://f/dir/", "http://h/%7Efoo/", "itms-apps://x/y" }

  local function same_as_curl(base, ref)
    local want, want_err = through_curl(base, ref)
    local got, got_err = url.join(base, ref)
    assert.are.equal(want, got, ("join(%q, %q)"):format(base, ref))
    assert.are.equal(want_err, got_err)
  end

  it("gives what curl gives for references at the edge of plain", function()
    local refs = { "/", "/g", "/g?y", "/g?y/./x", "/g?y/../x", "/a/b/c", "/./g", "/../g", "/g/.", "/g/..", "/g/./h",
      "/g/../h", "/g/..x", "/g/.x", "/.g", "/..g", "/g.", "/a//b", "//g", "//g/h", "/g#s", "/g%20h", "/g%2e%2E/x",
      "/g h", "/\195\169", "/g?y#s", "/(x)!$&'*+,;=:@~_-.", "/g?", "/?", "/??", "/g?a=1&b=/c?d", "/.", "/..", "/.?x",
      "/..?x", "/g/.?x", "/\t", "/a\\b", "/[x]", "/{x}", "/a|b", "/a^b", "/a`b", "/a\"b", "/a<b>" }
    for _, base in ipairs(BASES) do
      for _, ref in ipairs(refs) do same_as_curl(base, ref) end
    end
  end)

  local seed = 12345
  local function random(n) -- a fixed sequence, the same on every machine
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n + 1
  end
  local function random_text(first, alphabet, max_len)
    local chars = { first }
    for k = 2, random(max_len) do chars[k] = alphabet[random(#alphabet)] end
    return table.concat(chars)
  end
  local PATH_CHARS = { "/", "/", "/", ".", ".", "?", "#", "%", "a", "Z", "0", ":", "@", "~", "-", "_", "+", "=", "&", " ",
    "\195", "[", "\\", "\t", "'" }

  it("gives what curl gives for 3000 random absolute paths", function()
    for i = 1, 3000 do
      same_as_curl(BASES[i % #BASES + 1], random_text("/", PATH_CHARS, 10))
    end
  end)

  it("gives what curl gives for 3000 random bases", function()
    local schemes = { "http", "https", "ftp", "HTTP", "Http", "h1+x", "1h", "" }
    local host_chars = { "a", "Z", "x", "0", "1", "2", "5", "9", ".", ".", "-", "_", "%", "@", ":", "[", "]", " ", "\195" }
    local port_chars = { "0", "1", "6", "9", "5", "x", "" }
    for _ = 1, 3000 do
      local host = random_text("", host_chars, 12)
      local port = random(3) == 1 and (":" .. random_text("", port_chars, 7)) or ""
      local base = schemes[random(#schemes)] .. "://" .. host .. port .. random_text("", PATH_CHARS, 6)
      same_as_curl(base, random_text("/", PATH_CHARS, 4))
    end
  end)

  -- aqueue.robots reads the target of most URLs this way, without a parse:
  -- what it gives must be what url.parse gives, the origin as u writes it.
  it("origin_and_target gives url.parse's path and query, or nothing", function()
    local origin_and_target = require("aqueue.url_core").origin_and_target
    local function check(u)
      local origin, target = origin_and_target(u)
      if origin == nil then return false end
      local p = assert(url.parse(u), u)
      local path = (p.path == nil or p.path == "") and "/" or p.path
      assert.are.equal(path .. (p.query and ("?" .. p.query) or ""), target, u)
      assert.are.equal(u:match("^%a[%w+.%-]*://[^/?#]*"), origin, u)
      return true
    end
    assert.is_true(check("http://127.0.0.1:8080/page/1.html"))
    assert.is_true(check("https://Example.com/a?b=c#d"))
    assert.is_true(check("http://h"))
    assert.is_true(check("http://h#/x"))
    for _, u in ipairs({ "http://h/a/../b", "http://h/./b", "http://h/a%20b", "http://h/a b", "http://h?q", "http://h/a?",
      "ftp://h/a", "http://u@h/a", "http://[::1]/a", "http://h:0080/a", "http://h//a", "http://h/\195\169" }) do
      assert.is_false(check(u), u)
    end
    local schemes = { "http", "https", "ftp", "HTTP" }
    local host_chars = { "a", "Z", "0", "1", ".", "-", "@", ":", "%" }
    local told = 0
    for _ = 1, 3000 do
      local u = schemes[random(#schemes)] .. "://" .. random_text("h", host_chars, 5) .. random_text("/", PATH_CHARS, 10)
      if check(u) then told = told + 1 end
    end
    assert.is_true(told > 100, "random URLs told without a parse: " .. told) -- (the check ran on enough of them)
  end)
end)

describe("url.query", function()
  it("sorts the keys of a table, so the same table gives the same string", function()
    assert.are.equal("a=1&b=x%20y&c=%C3%A9", url.query{ c = "é", b = "x y", a = 1 })
    assert.are.equal("", url.query{})
  end)

  it("repeats a key for a list of values, in order", function()
    assert.are.equal("id=3&id=1&z=0", url.query{ z = 0, id = { 3, 1 } })
  end)

  it("keeps the order of a list of pairs", function()
    assert.are.equal("b=2&a=1&b=3&k%26=v%3D", url.query{ { "b", 2 }, { "a", 1 }, { "b", 3 }, { "k&", "v=" } })
  end)

  it("raises on what it cannot write", function()
    assert.has_error(function() url.query("a=1") end, "aqueue.url.query: the parameters must be a table, got string")
    assert.has_error(function() url.query{ a = true } end,
      "aqueue.url.query: the value of 'a' must be a string or a number, got boolean")
    assert.has_error(function() url.query{ { "a" } } end,
      "aqueue.url.query: parameter 1 must be a { key, value } pair, got table")
    assert.has_error(function() url.query{ { "a", 1 }, b = 2 } end,
      'aqueue.url.query: a list of { key, value } pairs cannot also have the key "b"')
    assert.has_error(function() url.query{ [true] = 1 } end,
      "aqueue.url.query: a key must be a string, got boolean (a list takes { key, value } pairs)")
  end)
end)
