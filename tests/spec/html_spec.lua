-- aqueue.html: parsing (broken markup, charsets, non-HTML bodies, large pages
-- on the thread pool), CSS and XPath queries against a fixture page (the
-- expected results are what parsel 1.7 selects on the same page), what a node
-- tells, errors, and memory (a node keeps its document alive).
local aqueue = require("aqueue")
local html = require("aqueue.html")
local core = require("aqueue.html_core")
local files = require("tests.support.files")

local FIXTURES = "tests/spec/fixtures/html/"

local function fixture(name)
  return assert(files.read(FIXTURES .. name), "missing fixture " .. name)
end

-- A short name for each result: tag(id | data-id | first class | lang | first
-- word) for a node, the string itself for a string.
local function names(list)
  local out = {}
  for i, v in ipairs(list) do
    if type(v) == "string" then
      out[i] = v
    else
      local class = v:attr("class")
      local name = v:attr("id") or v:attr("data-id") or (class and class:match("%S+")) or v:attr("lang")
        or v:text():match("%S+")
      out[i] = v.tag .. "(" .. name .. ")"
    end
  end
  return out
end

local function collect()
  for _ = 1, 4 do collectgarbage() end
end

describe("aqueue.html.parse", function()
  it("mends broken markup as a browser does: unclosed tags, stray end tags, unquoted attributes", function()
    local doc = html.parse(fixture("broken.html"))
    assert.are.equal("Broken", doc:css_first("title::text"))
    -- <p>one<p>two</div></div></div>: two paragraphs inside the div, the stray </div>s dropped
    local div = doc:css_first("div")
    assert.are.equal("a", div:attr("id"))
    assert.are.equal("box", div:attr("class"))
    assert.are.same({ "one", "two" }, div:css("p::text"))
    assert.are.same({ "div", "table", "ul", "a", "a", "p" }, (function()
      local tags = {}
      for i, n in ipairs(doc:css("body > *")) do tags[i] = n.tag end
      return tags
    end)())
    assert.are.same({ "cell 1", "cell 2" }, doc:css("td::text"))
    assert.are.same({ "x", "y", "z" }, doc:css("ul > li::text"))
    assert.are.same({ "/unquoted", "/single" }, doc:css("a::attr(href)"))
    assert.are.same({ "unquoted", "single" }, doc:css("a::text"))
    -- entities decoded (&nbsp; is U+00A0)
    assert.are.equal("café & <tag> \194\160", doc:css_first("body > p"):text())
  end)

  it("reads the charset from <meta charset>", function()
    local doc = html.parse(fixture("latin1_meta.html"))
    assert.are.equal("Café", doc:css_first("title"):text())
    assert.are.equal("Crème brûlée à 2¤", doc:css_first("p"):text())
  end)

  it("reads the charset from <meta http-equiv=Content-Type>", function()
    local doc = html.parse(fixture("latin1_http_equiv.html"))
    assert.are.equal("Café", doc:css_first("title"):text())
    assert.are.equal("Crème brûlée", doc:css_first("p"):text())
  end)

  it("takes the charset from the encoding argument (a Content-Type header's)", function()
    local doc = html.parse(fixture("latin1_no_meta.html"), nil, "ISO-8859-1")
    assert.are.equal("Café", doc:css_first("title"):text())
    assert.are.equal("Crème brûlée", doc:css_first("p"):text())
  end)

  it("lets the encoding argument win over the page's <meta>", function()
    local page = '<meta charset="utf-8"><p>caf\195\169</p>'
    assert.are.equal("café", html.parse(page):css_first("p"):text())
    -- the two UTF-8 bytes of é read as two Latin-1 characters
    assert.are.equal("cafÃ©", html.parse(page, nil, "iso-8859-1"):css_first("p"):text())
  end)

  it("ignores an encoding name libxml2 does not know (the <meta> decides)", function()
    local doc = html.parse(fixture("latin1_meta.html"), nil, "x-no-such-charset")
    assert.are.equal("Café", doc:css_first("title"):text())
  end)

  it("reads UTF-8 when nothing names a charset", function()
    local doc = html.parse("<p>caf\195\169 \226\130\172</p>")
    assert.are.equal("café €", doc:css_first("p"):text())
  end)

  it("gives an empty document for a body without markup: JSON, plain text, binary, nothing", function()
    local bodies = {
      '{"items": [1, 2, 3], "next": "/page/2"}',
      "just some text, no tags",
      "\137PNG\r\n\26\n\0\0\0\rIHDR\0\0\0\16",
      "",
      "   \n",
    }
    for _, body in ipairs(bodies) do
      local doc = html.parse(body, "http://127.0.0.1/")
      assert.are.same({}, doc:css("*"))
      assert.are.same({}, doc:css("a::attr(href)"))
      assert.is_nil(doc:css_first("p"))
      assert.are.equal("", doc:text())
      assert.are.equal("", doc:html())
      assert.is_nil(doc.tag)
    end
  end)

  it("refuses arguments of the wrong type, naming them", function()
    assert.has_error(function() html.parse(nil) end, "aqueue.html.parse: text must be a string, got nil")
    assert.has_error(function() html.parse("<p>", 80) end,
      "aqueue.html.parse: base_url must be a string or nil, got number")
    assert.has_error(function() html.parse("<p>", nil, true) end,
      "aqueue.html.parse: encoding must be a string or nil, got boolean")
  end)

  describe("a large page", function()
    -- pool_min_bytes and more: 20 links per section, sections numbered
    local function big_page(sections)
      local parts = { "<html><body>" }
      for s = 1, sections do
        parts[#parts + 1] = '<div class="s" id="s' .. s .. '"><h2>Section ' .. s .. "</h2>"
        for l = 1, 20 do
          parts[#parts + 1] = '<p>Text <a href="/s' .. s .. "/" .. l .. '">link ' .. l .. "</a> and more.</p>"
        end
        parts[#parts + 1] = "</div>"
      end
      parts[#parts + 1] = "</body></html>"
      return table.concat(parts)
    end
    local page = big_page(1000)

    -- Runs parse() while another task waits for turns; returns the document
    -- and how many turns the other task had meanwhile.
    local function parse_beside_a_ticker(parse)
      local turns = 0
      local ticker = aqueue.spawn(function()
        while true do
          turns = turns + 1
          aqueue.sleep(0)
        end
      end)
      local doc = parse()
      local turns_during_parse = turns
      ticker:cancel()
      return doc, turns_during_parse
    end

    it("is parsed on the thread pool: the other tasks run meanwhile", function()
      assert.is_true(#page >= html.pool_min_bytes * 4)
      local doc, turns = parse_beside_a_ticker(function() return html.parse(page, "http://127.0.0.1/") end)
      assert.is_true(turns > 0)
      assert.are.equal(20000, #doc:css("a"))
      assert.are.equal("/s1000/20", doc:css("div#s1000 a::attr(href)")[20])
    end)

    it("is parsed inline where the task cannot wait (no other task runs meanwhile), with the same result", function()
      local doc, turns = parse_beside_a_ticker(coroutine.wrap(function() return html.parse(page) end))
      assert.are.equal(0, turns)
      assert.are.equal(20000, #doc:css("a"))
      assert.are.equal("Section 1000", doc:css_first("#s1000 h2"):text())
    end)
  end)
end)

describe("aqueue.html queries", function()
  local doc = html.parse(fixture("page.html"), "http://127.0.0.1:8080/shop/index.html")

  -- selector -> what parsel 1.7 selects on the same page
  local cases = {
    { "li", { "li(1)", "li(2)", "li(3)", "li(4)", "li(5)" } },
    { "#list", { "ul(list)" } },
    { ".note", { "p(note)", "p(note)" } },
    { ".content", { "div(main)", "div(footer)" } },
    { "[title]", { "a(One)", "a(Four)" } },
    { '[data-id="3"]', { "li(3)" } },
    { 'a[href^="/p/"]', { "a(One)", "a(Two)", "a(Four)" } },
    { 'a[href$=".pdf"]', { "a(Manual)" } },
    { 'a[href*="shop"]', { "a(Three)", "a(Mail)" } },
    { "[rel~=next]", { "a(Two)" } },
    { "[lang|=en]", { "html(en)", "li(1)", "li(2)" } },
    { "div p", { "p(intro)", "p(note)", "p(note)", "p(café,)" } },
    { "div > p", { "p(intro)", "p(note)", "p(note)", "p(café,)" } },
    { "body > p", {} },
    { "h1 + p", { "p(intro)" } },
    { "h2 + p", { "p(note)" } },
    { "h2 ~ p", { "p(note)", "p(note)" } },
    { "h1 ~ p", { "p(intro)", "p(note)", "p(note)" } },
    { "li:nth-child(2n+1)", { "li(1)", "li(3)", "li(5)" } },
    { "li:nth-child(odd)", { "li(1)", "li(3)", "li(5)" } },
    { "li:nth-child(even)", { "li(2)", "li(4)" } },
    { "li:nth-child(2)", { "li(2)" } },
    { "li:nth-child(-n+2)", { "li(1)", "li(2)" } },
    { "li:nth-child(n+4)", { "li(4)", "li(5)" } },
    { "li:nth-child(3n-1)", { "li(2)", "li(5)" } },
    { "li:first-child", { "li(1)" } },
    { "li:last-child", { "li(5)" } },
    { "li:not(.sale)", { "li(1)", "li(2)", "li(4)", "li(5)" } },
    { "p:not([class])", { "p(café,)" } },
    { "ul > li.item:not(.first):not(.last) > a", { "a(Two)", "a(Three)", "a(Four)" } },
    { "p.intro + ul li:nth-child(3) a", { "a(Three)" } },
    { "span.note", {} }, -- class "note-like" is not "note"
    { "h1, h2", { "h1(top)", "h2(Notes)" } },
    { "h2, h1", { "h1(top)", "h2(Notes)" } }, -- a group selects in document order
    { "H1", { "h1(top)" } },
    { 'LI[DATA-ID="4"]', { "li(4)" } },
    { "li a::text", { "One", "Two", "Three", "Four", "Manual" } },
    { "li a::attr(href)", { "/p/1", "/p/2", "http://shop.example/p/3", "/p/4#reviews", "/docs/manual.pdf" } },
    { "p.intro ::text", { "Our ", "best", " products." } },
    { "p.intro::text", { "Our ", " products." } },
    { "img::attr(src)", { "/logo.png" } },
    { "a::attr(data-missing)", {} },
    { "title::text", { "The fixture page" } },
  }
  for _, case in ipairs(cases) do
    it("css " .. case[1], function()
      assert.are.same(case[2], names(doc:css(case[1])))
    end)
  end

  it("css * selects every element in document order", function()
    local all = doc:css("*")
    assert.are.equal(28, #all)
    assert.are.same({ "html", "head", "meta", "title", "body", "div", "h1" }, (function()
      local t = {}
      for i = 1, 7 do t[i] = all[i].tag end
      return t
    end)())
  end)

  it("queries a node relative to it, the node included (as parsel does)", function()
    local list = doc:css_first("#list")
    assert.are.equal(5, #list:css("a"))
    assert.are.same({ "li(3)" }, names(list:css("li.sale")))
    assert.are.same({}, list:css("p"))
    local li = doc:css_first("li.sale")
    assert.are.same({ "li(3)" }, names(li:css("li")))
    assert.are.same({ "http://shop.example/p/3" }, li:xpath(".//a/@href"))
    assert.are.same({ "Three" }, li:css("::text"))
  end)

  it("css_first gives the first match, or nil", function()
    assert.are.equal("li", doc:css_first("li").tag)
    assert.are.equal("1", doc:css_first("li"):attr("data-id"))
    assert.are.equal("One", doc:css_first("li a::text"))
    assert.is_nil(doc:css_first("table"))
    assert.is_nil(doc:css_first("a::attr(data-missing)"))
  end)

  it("xpath gives nodes, strings for text and attributes, and the values of other expressions", function()
    assert.are.same({ "li(1)", "li(2)" }, names(doc:xpath("//li[position() <= 2]")))
    assert.are.same({ "/p/1", "/p/2" }, doc:xpath("//li[position() <= 2]/a/@href"))
    assert.are.same({ "Products" }, doc:xpath("//h1/text()"))
    assert.are.equal(5, doc:xpath("count(//li)"))
    assert.are.equal(2.5, doc:xpath("count(//li) div 2"))
    assert.are.equal("Products", doc:xpath("string(//h1)"))
    assert.are.equal(true, doc:xpath("count(//li) = 5"))
    assert.are.equal(false, doc:xpath("boolean(//table)"))
    assert.are.same({}, doc:xpath("//table"))
    local root = doc:xpath("/")
    assert.are.equal(1, #root)
    assert.is_nil(root[1].tag) -- the document
  end)

  it("node.tag, node:text(), node:attr(), node:html()", function()
    local a = doc:css_first("li.first a")
    assert.are.equal("a", a.tag)
    assert.are.equal("One", a:text())
    assert.are.equal("/p/1", a:attr("href"))
    assert.are.equal("One", a:attr("TITLE")) -- HTML attribute names match in any case
    assert.is_nil(a:attr("rel"))
    assert.are.equal('<a href="/p/1" title="One">One</a>', a:html())
    local intro = doc:css_first("p.intro")
    assert.are.equal("Our best products.", intro:text())
    assert.are.equal('<p class="intro">Our <b>best</b> products.</p>', intro:html())
    assert.are.equal("<p>café, naïve, €</p>", doc:css_first("#footer p"):html())
    assert.is_nil(intro.no_such_field)
  end)

  it("the document: no tag, all its text, its whole HTML", function()
    assert.is_nil(doc.tag)
    assert.truthy(doc:text():find("Products", 1, true))
    assert.truthy(doc:text():find("café, naïve, €", 1, true))
    local whole = doc:html()
    assert.are.equal("<!DOCTYPE html>", whole:sub(1, 15))
    assert.truthy(whole:find('<h1 id="top">Products</h1>', 1, true))
  end)

  it("compares nodes by identity: each query makes new objects of the same node", function()
    assert.are.equal(doc:css_first("#top"), doc:css("h1")[1])
    assert.is_true(doc:css_first("#top") == doc:xpath("//h1")[1])
    assert.is_false(doc:css_first("#top") == doc:css_first("h2"))
    assert.are.equal("aqueue.html node <h1>", tostring(doc:css_first("#top")):match("^[^:]+"))
  end)

  describe("errors", function()
    local function message(fn, ...)
      local ok, err = pcall(fn, ...)
      assert.is_false(ok)
      return err
    end

    it("an invalid CSS selector raises, naming it and the character where reading failed", function()
      local cases = {
        { "a[", 'invalid CSS selector "a[": expected an attribute name, got the end of the selector at character 3' },
        { "a[href", 'invalid CSS selector "a[href": expected \']\' or an operator (= ~= |= ^= $= *=), got the end of the selector at character 7' },
        { "[data-id=3]", 'invalid CSS selector "[data-id=3]": expected a value (a name or a quoted string), got \'3\' at character 10' },
        { "li:nth-child(x)", 'invalid CSS selector "li:nth-child(x)": invalid argument \'x\' to :nth-child() (an+b, odd or even) at character 4' },
        { "li:hover", 'invalid CSS selector "li:hover": the pseudo-class :hover is not supported at character 4' },
        { "a::before", 'invalid CSS selector "a::before": the pseudo-element ::before is not supported (::text and ::attr(name) are) at character 2' },
        { "a::text b", 'invalid CSS selector "a::text b": a pseudo-element must end its selector, got \'b\' after it at character 9' },
        { "a:not(b c)", 'invalid CSS selector "a:not(b c)": expected \')\', got a space at character 8' },
        { "a >", 'invalid CSS selector "a >": expected a selector, got the end of the selector at character 4' },
        { "", 'invalid CSS selector "": expected a selector, got the end of the selector at character 1' },
        { "a, , b", 'invalid CSS selector "a, , b": expected a selector, got \',\' at character 4' },
        { "a[title='x", 'invalid CSS selector "a[title=\'x": the string is not closed at character 9' },
        { "svg|a", 'invalid CSS selector "svg|a": namespaces are not supported at character 4' },
      }
      for _, case in ipairs(cases) do
        local err = message(doc.css, doc, case[1])
        assert.are.equal("aqueue.html: " .. case[2], err)
      end
    end)

    it("points at the line of the call", function()
      local calls = {
        function() local r = doc:css("a[") return r end,
        function() local r = doc:css_first("a[") return r end,
        function() local r = doc:xpath("//a[") return r end,
        function() local r = doc:xpath("no_such_function()") return r end,
      }
      for _, call in ipairs(calls) do
        local where = debug.getinfo(call, "S")
        local err = message(call)
        assert.are.equal(where.short_src .. ":" .. where.linedefined .. ": aqueue.html: ", err:match("^.-: aqueue%.html: "))
      end
    end)

    it("an invalid XPath raises, naming it and where it failed", function()
      assert.are.equal('aqueue.html: invalid XPath "//a[": invalid expression at character 5', message(doc.xpath, doc, "//a["))
      assert.are.equal('aqueue.html: invalid XPath "//a[@href = \'x]": a string is not closed at character 16',
        message(doc.xpath, doc, "//a[@href = 'x]"))
      assert.are.equal('aqueue.html: invalid XPath "": invalid expression at character 1', message(doc.xpath, doc, ""))
      assert.are.equal('aqueue.html: invalid XPath "a\\0b": contains a NUL byte', message(doc.xpath, doc, "a\0b"))
    end)

    it("an XPath that fails when evaluated raises, naming it", function()
      assert.are.equal('aqueue.html: XPath "no_such_function(//a)" failed: unknown function',
        message(doc.xpath, doc, "no_such_function(//a)"))
      assert.are.equal('aqueue.html: XPath "$undefined" failed: undefined variable', message(doc.xpath, doc, "$undefined"))
    end)

    it("a selector or XPath that is not a string raises", function()
      assert.are.equal("aqueue.html: a CSS selector must be a string, got nil", message(doc.css, doc, nil))
      assert.are.equal("aqueue.html: an XPath must be a string, got number", message(doc.xpath, doc, 5))
    end)
  end)
end)

describe("node:links()", function()
  local PAGE = "http://127.0.0.1:8080/catalog/index.html"
  local doc = html.parse(fixture("links.html"), PAGE)

  it("gives the absolute URLs of a[href], resolved against <base href>, in page order, each once, without fragments", function()
    assert.are.same({
      "http://127.0.0.1:8080/shop/item/1",
      "http://127.0.0.1:8080/shop/item/2", -- the spaces around the href dropped
      -- item/1#reviews: the same URL once its fragment is removed
      "http://127.0.0.1:8080/about",
      "http://cdn.example.com/x.js",
      "https://other.example/p?q=1",
      -- mailto:, javascript:, tel: left out
      "http://127.0.0.1:8080/shop/", -- "#top" and "": the base itself
    }, doc:links())
  end)

  it("takes the href, else the src, of the selector's elements, or the values of its ::attr()", function()
    assert.are.same({ "http://127.0.0.1:8080/shop/img/logo.png" }, doc:links("img"))
    assert.are.same({ "http://127.0.0.1:8080/shop/img/logo.png" }, doc:links("img::attr(src)"))
    assert.are.same({ "http://127.0.0.1:8080/shop/page2.html" }, doc:links("link[rel=next]"))
    assert.are.same({}, doc:links("table a"))
  end)

  it("on a node: the links inside it, resolved against the document's base", function()
    assert.are.same({ "http://127.0.0.1:8080/shop/item/1", "http://127.0.0.1:8080/shop/item/2" },
      doc:css_first("#nav"):links())
  end)

  it("by default takes what a::attr(href) selects, on broken markup too, the node itself included", function()
    -- (a walk of the tree in C, checked against libxml2's XPath below)
    for _, name in ipairs({ "links.html", "page.html", "broken.html" }) do
      local page = html.parse(fixture(name), PAGE)
      local hrefs = page:xpath("descendant-or-self::a/@href")
      assert.is_true(#hrefs > 0)
      assert.are.same(page:links(), page:links("a::attr(href)"))
      for _, node in ipairs(page:css("body, body *")) do
        assert.are.same(node:links(), node:links("a::attr(href)"))
      end
    end
    local a = html.parse('<p><a href="/self">me <a href="/inner">in</a></a>', PAGE):css_first("a")
    assert.are.same({ "http://127.0.0.1:8080/self" }, a:links()) -- (the parser closed the first a)
    local nested = html.parse('<div id=d><a href="/x"><b><a href="/y"></a></b></a> <a name=n>no href</a> <A HREF="/Z">z</A></div>', PAGE)
    assert.are.same({ "http://127.0.0.1:8080/x", "http://127.0.0.1:8080/y", "http://127.0.0.1:8080/Z" },
      nested:css_first("#d"):links())
  end)

  it("gives each URL once on a page of many links, repeats early and late among them", function()
    -- (the first 32 are compared in place, the rest through a table: both
    -- must drop a repeat of either)
    local parts, want = {}, {}
    for i = 1, 100 do
      parts[#parts + 1] = ('<a href="/p/%d">%d</a>'):format(i, i)
      want[#want + 1] = "http://127.0.0.1:8080/p/" .. i
      if i % 7 == 0 then -- a repeat of an early link, one of a late one, one by another spelling
        parts[#parts + 1] = ('<a href="/p/%d">again</a><a href=" /p/%d#x">late</a>'):format(i % 5 + 1, i)
        parts[#parts + 1] = ('<a href="http://127.0.0.1:8080/p/%d">absolute</a>'):format(i - 1)
      end
    end
    local links = html.parse(table.concat(parts, "\n"), "http://127.0.0.1:8080/"):links()
    assert.are.same(want, links)
  end)

  it("resolves against the base_url of parse when the page has no <base>", function()
    local page = '<a href="b/c?x=1">rel</a> <a href="/root">root</a> <a href="HTTP://Example.COM/Up">abs</a>'
    -- (the scheme in lower case, the host as written: url.join's)
    assert.are.same({ "http://127.0.0.1:8080/dir/b/c?x=1", "http://127.0.0.1:8080/root", "http://Example.COM/Up" },
      html.parse(page, "http://127.0.0.1:8080/dir/page.html"):links())
  end)

  it("takes the first <base> that has an href, wherever it is", function()
    local page = '<base target="_top"><div><p><base href="/first/"></p></div><base href="/second/"><a href="x">x</a>'
    assert.are.same({ "http://127.0.0.1:8080/first/x" }, html.parse(page, "http://127.0.0.1:8080/dir/page.html"):links())
    assert.are.same({ "http://127.0.0.1:8080/dir/x" },
      html.parse('<base target="_top"><a href="x">x</a>', "http://127.0.0.1:8080/dir/page.html"):links())
  end)

  it("without any base keeps only the links that are absolute already", function()
    local page = '<base href="/relative/base/"><a href="b/c">rel</a> <a href="https://example.com/x#f">abs</a>'
    assert.are.same({ "https://example.com/x" }, html.parse(page):links())
  end)

  it("of a body without markup is empty", function()
    assert.are.same({}, html.parse('{"next": "/page/2"}', PAGE):links())
  end)

  it("refuses a selector that is not a string, and an invalid one", function()
    assert.has_error(function() doc:links(5) end, "aqueue.html: links() takes a CSS selector or nothing, got number")
    local ok, err = pcall(doc.links, doc, "a[")
    assert.is_false(ok)
    assert.truthy(err:find('invalid CSS selector "a["', 1, true))
  end)
end)

describe("aqueue.html memory", function()
  -- Parses a page and returns one of its nodes: nothing else refers to the document.
  local function node_of_a_dropped_document()
    local doc = html.parse(fixture("page.html"))
    return doc:css_first("li.sale")
  end

  -- Holds the node while the document object is collected, then uses it.
  local function use_node_after_its_document_was_collected(before)
    local node = node_of_a_dropped_document()
    collect()
    assert.are.equal(before + 1, core.live_documents()) -- the node keeps it
    assert.are.equal("Three", node:text())
    assert.are.equal("li", node.tag)
    assert.are.equal("3", node:attr("data-id"))
    assert.are.same({ "http://shop.example/p/3" }, node:css("a::attr(href)"))
    assert.are.equal('<a href="http://shop.example/p/3">Three</a>', node:css_first("a"):html())
    assert.are.same({ "li(4)" }, names(node:xpath("following-sibling::li[1]")))
    assert.are.equal(28, #node:xpath("//*")) -- the whole tree is still there
  end

  it("a node keeps its document alive; the last one collected frees it", function()
    collect()
    local before = core.live_documents()
    use_node_after_its_document_was_collected(before)
    collect()
    assert.are.equal(before, core.live_documents())
  end)

  it("collects dropped documents as they are parsed, without a collectgarbage() of the script's", function()
    -- 40 pages of 200 KB: their documents (about 16 times that each in libxml2)
    -- are invisible to the Lua collector unless parse tells it
    local parts = {}
    for i = 1, 2000 do parts[i] = '<p class="x">Paragraph ' .. i .. ' with <a href="/l/' .. i .. '">a link</a>.</p>' end
    local page = "<html><body>" .. table.concat(parts) .. "</body></html>"
    assert.is_true(#page > 100 * 1024)
    collect()
    local before, most = core.live_documents(), 0
    local function parse_in_a_loop(times)
      for _ = 1, times do
        local doc = html.parse(page)
        assert.are.equal(2000, #doc:css("a"))
        most = math.max(most, core.live_documents() - before)
      end
    end
    parse_in_a_loop(40)
    assert.is_true(most <= 8, "documents alive at once: " .. most)
  end)

  it("steps the collector for documents only once they weigh as much as the Lua heap", function()
    -- A crawl of small pages with a large heap of its own: stepping the
    -- collector on every page made it finish a cycle every few hundred pages
    -- (a fifth of a crawl's time). Now the 400 pages' documents (about 80 MB
    -- of libxml2's memory, as parse measures it) begin to step it once they
    -- pass the heap's 30 MB, and the cycle that follows frees them.
    local cycles = 0
    local function watch()
      local proxy = newproxy(true)
      getmetatable(proxy).__gc = function()
        cycles = cycles + 1
        watch()
      end
    end
    watch()
    local heap = {}
    for i = 1, 200000 do heap[i] = { i, tostring(i) } end
    local parts = {}
    for i = 1, 150 do parts[i] = '<p><a href="/l/' .. i .. '">link ' .. i .. '</a></p>' end
    local page = "<html><body>" .. table.concat(parts) .. "</body></html>"
    collect()
    local before_cycles, before_docs = cycles, core.live_documents()
    for _ = 1, 400 do
      local doc = html.parse(page)
      assert.are.equal(150, #doc:css("a"))
    end
    local finished = cycles - before_cycles
    assert.is_true(finished >= 1 and finished <= 2, "collector cycles during the parses: " .. finished)
    assert.is_true(core.live_documents() - before_docs < 400, "no document was freed")
    heap = nil
  end)

  it("parses page after broken page, on the pool and inline, each tree freed whole", function()
    -- A tree's small blocks come from an arena of its parse's own, given back
    -- whole when the document is freed and handed to later parses; a parse
    -- of broken markup also leaves libxml2's last error on its thread,
    -- whose strings were the arena's (html_arena.c clears it). Each round
    -- frees the last round's documents before the next parses reuse their
    -- memory, and raises an XPath error of its own on the loop thread.
    local broken = fixture("broken.html")
    local sections = {}
    for i = 1, 1200 do sections[i] = ('<div class=s%d><p>unclosed <b>bold <a href="/l/%d">link %d</div>'):format(i, i, i) end
    local large = "<html><body>" .. table.concat(sections) .. "<td>stray</td></i></body>"
    local pool_min_bytes = html.pool_min_bytes
    finally(function() html.pool_min_bytes = pool_min_bytes end)
    html.pool_min_bytes = #large -- (the broken page inline, whatever the machine's cores)
    assert.is_true(#broken < html.pool_min_bytes)
    collect()
    local before = core.live_documents()
    for _ = 1, 20 do
      local small, big = html.parse(broken), html.parse(large)
      assert.are.equal("Broken", small:css_first("title::text"))
      assert.are.equal(1200, #big:css("a"))
      assert.are.equal("link 1200", big:css("a")[1200]:text())
      assert.has_error(function() big:xpath("//a[") end)
      small, big = nil, nil
      collect()
      assert.are.equal(before, core.live_documents())
    end
  end)

  it("frees every document of many parses and queries", function()
    collect()
    local before = core.live_documents()
    local function parse_and_query(times)
      for _ = 1, times do
        local doc = html.parse(fixture("page.html"))
        assert.are.equal(5, #doc:css("li"))
      end
    end
    parse_and_query(200)
    collect()
    assert.are.equal(before, core.live_documents())
  end)
end)

describe("aqueue.html's simplest selectors (a tag, its ::text, its ::attr(name))", function()
  -- They are found by a walk of the tree (html_select.c); every other
  -- selector goes through libxml2's XPath. The walk must give what the
  -- XPath of the selector's translation gives, in the same order.
  local nested = "<html><head><title>T<!-- c --></title><script>if (a < b) x()</script>"
    .. "<style>p{}</style></head><body><div id=o class=x>one<div id=i>two<p>three</p>four</div>"
    .. "five<x-y data-x=1>xy</x-y><![CDATA[cd]]></div><p id=last>six<a href=/a>a<b>b</b>c</a></p>"
    .. "<img src=/i.gif><a name=n>no href</a><A HREF='/Z' Data-X=2>z</A></body></html>"
  local selectors = {
    "a", "div", "p", "b", "title", "img", "script", "x-y", "html", "nothing",
    "a::text", "div::text", "p::text", "title::text", "script::text", "style::text", "x-y::text", "body::text",
    "a::attr(href)", "img::attr(src)", "div::attr(id)", "div::attr(class)", "a::attr(data-x)",
    "x-y::attr(data-x)", "meta::attr(content)", "p::attr(nothing)",
  }
  local function walk_and_xpath(doc)
    for _, node in ipairs({ doc, unpack(doc:css("*")) }) do
      for _, selector in ipairs(selectors) do
        local compiled = core.compile(html.css_to_xpath(selector))
        local by_xpath = core.eval(node, compiled)
        assert.are.same(by_xpath, node:css(selector), selector)
        assert.are.equal(by_xpath[1], node:css_first(selector), selector)
        local tag = selector:match("^[%w%-]+$")
        if tag then -- links(tag): the href, else the src, of each element
          assert.are.same(core.eval(node, compiled, false, true), core.select(node, tag, "elements", nil, false, true))
        end
      end
    end
  end

  it("give what libxml2's XPath gives for their translation, in the same order, from every node", function()
    walk_and_xpath(html.parse(nested, PAGE))
    for _, name in ipairs({ "links.html", "page.html", "broken.html" }) do
      walk_and_xpath(html.parse(fixture(name), PAGE))
    end
  end)
end)
