-- aqueue.html: HTML documents queried with CSS selectors and XPath (SPEC
-- section 11), on libxml2: its HTML parser and its XPath engine.
--
--   local html = require("aqueue.html")
--   local doc = html.parse(res.body, res.url)
--   for _, a in ipairs(doc:css("ul.results a")) do print(a:attr("href"), a:text()) end
--   local title = doc:css_first("h1::text")           -- a string, or nil
--   local hrefs = doc:css("a::attr(href)")             -- strings
--   local n = doc:xpath("count(//li)")                 -- a number
--   local urls = doc:links()                           -- absolute, unique, in page order
--
-- A document and every node (an element) have the same methods: css, css_first,
-- xpath, links, text, attr, html, and the field tag (nil for the document).
-- Queries on a node are relative to it (and include it, as parsel's do).
-- Results of a query are a list in document order: elements are nodes, text
-- and attribute values are strings; an XPath whose value is a string, number
-- or boolean gives that value. Nodes keep their document alive: the document
-- is freed once neither it nor any of its nodes is referenced.
--
-- The C side is engine/modules/html/ (the module aqueue.html_core, loaded by
-- the first parse, so scripts that never parse HTML never load libxml2); the
-- CSS translation is aqueue.css_xpath. An invalid selector or XPath raises (it
-- is a mistake in the script), naming the selector and where it went wrong.
local aqueue_core = require("aqueue.core")
local can_yield = aqueue_core.can_yield

local type, error, format, collectgarbage, ipairs = type, error, string.format, collectgarbage, ipairs
local newproxy, getmetatable = newproxy, getmetatable

local M = {}

-- Pages of at least this many bytes are parsed on the thread pool while the
-- task waits; outside a task (no coroutine of the engine's to suspend) every
-- page is parsed inline. With more than one core, every page: the loop
-- thread runs all the tasks, and a parse there is time none of them gets
-- (a page of 344 bytes cost it 22 us inline, 9 us through the pool; one of
-- 92 bytes 7.8 against 4.7), while the parse itself runs on another core.
-- On one core that hop is only a cost, and the pool only keeps a large page
-- from stalling the others: libxml2 parses about 40 KB per ms here (a 1 MB
-- page held the loop for 25-40 ms), so 64 KB holds it for under 2 ms.
M.pool_min_bytes = aqueue_core.cpus > 1 and 0 or 64 * 1024

-- The libxml2 memory (KB) of the documents parsed since the collector last
-- finished a cycle, as parse reports it (the bytes of each tree's arena): a
-- proxy that is garbage from birth is finalized at the end of each cycle,
-- which sets it back to 0 and makes the next proxy. (A cycle frees the
-- documents dropped before it began.)
local parsed_kb = 0
local function watch_cycles()
  local proxy = newproxy(true)
  getmetatable(proxy).__gc = function()
    parsed_kb = 0
    watch_cycles()
  end
end
watch_cycles()

local core -- aqueue.html_core, once loaded
local load_core -- (below: it completes the methods of nodes)

-- Parses an HTML page (never an error on broken markup). base_url: the page's
-- URL, against which links() resolves relative links. encoding: the charset of
-- a Content-Type header, which wins over the page's <meta>; a name libxml2
-- does not know is ignored. Text without any markup (JSON, plain text,
-- binary, "") gives an empty document.
function M.parse(text, base_url, encoding)
  if type(text) ~= "string" then error(format("aqueue.html.parse: text must be a string, got %s", type(text)), 2) end
  if base_url ~= nil and type(base_url) ~= "string" then
    error(format("aqueue.html.parse: base_url must be a string or nil, got %s", type(base_url)), 2)
  end
  if encoding ~= nil and type(encoding) ~= "string" then
    error(format("aqueue.html.parse: encoding must be a string or nil, got %s", type(encoding)), 2)
  end
  if not core then load_core() end
  local doc, bytes
  if #text >= M.pool_min_bytes and can_yield() then
    doc, bytes = core.parse_in_pool(text, base_url, encoding)
    if not doc then error(bytes, 2) end
  else
    doc, bytes = core.parse(text, base_url, encoding)
  end
  -- A document takes 33-38 times its text in libxml2's memory, which the Lua
  -- collector does not see (to it a document is a 16-byte userdata): left
  -- alone it let 300 MB of dropped documents pile up in 60 parses of a 300 KB
  -- page, and the fresh memory's page faults made parsing 2x slower. So once
  -- the documents parsed since the collector's last cycle take as much memory
  -- as the whole Lua heap (when its own allocations would start a cycle),
  -- each parse makes the collector do the work that allocating that much
  -- would have made it do, which frees the documents dropped meanwhile. Not
  -- before: a crawl of small pages with a large heap (its items, its keys)
  -- stepped the collector on every page, and spent 18-22 % of its time in it
  -- instead of 6-10 %.
  local kb = bytes / 1024
  parsed_kb = parsed_kb + kb
  if parsed_kb > collectgarbage("count") then
    collectgarbage("step", kb)
  end
  return doc
end

-- ---------------------------------------------------------------------------
-- The caches: compiled XPath per expression, and per CSS selector the
-- compiled XPath of its translation (parsel caches its translations too).
-- Scripts use a handful of selectors; one that builds them from data would
-- grow a cache for ever, so each is emptied when it reaches CACHE_MAX.

local CACHE_MAX = 1000
local by_xpath, n_xpath = {}, 0
local by_css, n_css = {}, 0

local function compiled_xpath(expr, level)
  local c = by_xpath[expr]
  if c then return c end
  if type(expr) ~= "string" then error(format("aqueue.html: an XPath must be a string, got %s", type(expr)), level + 1) end
  local err
  c, err = core.compile(expr)
  if not c then error(format("aqueue.html: invalid XPath %q: %s", expr, err), level + 1) end
  if n_xpath >= CACHE_MAX then by_xpath, n_xpath = {}, 0 end
  by_xpath[expr], n_xpath = c, n_xpath + 1
  return c
end

-- The XPath of a CSS selector (what css() evaluates), or nil and why not.
local function translate(selector)
  return require("aqueue.css_xpath").translate(selector)
end

-- The simplest selectors, a tag (`img`), its text (`title::text`) or one of
-- its attributes (`a::attr(href)`), are found by a walk of the tree
-- (html_select.c), five times cheaper than XPath on a small page: an XPath
-- translation of exactly one of those shapes gives { tag, what [, attr] },
-- what core.select takes. (Names with a namespace prefix, or any character
-- outside ASCII letters, digits, "-" and "_", stay with XPath.)
local function walk_of(expr)
  local tag, rest = expr:match("^descendant%-or%-self::([%w_%-]+)(.*)$")
  if not tag then return nil end
  if rest == "" then return { tag, "elements" } end
  if rest == "/text()" then return { tag, "text" } end
  local attr = rest:match("^/@([%w_%-]+)$")
  if attr then return { tag, "attribute", attr } end
  return nil
end

local function compiled_css(selector, level)
  local c = by_css[selector]
  if c then return c end
  local expr, err = translate(selector)
  if not expr then error("aqueue.html: " .. err, level + 1) end
  c = walk_of(expr) or compiled_xpath(expr, level + 1)
  if n_css >= CACHE_MAX then by_css, n_css = {}, 0 end
  by_css[selector], n_css = c, n_css + 1
  return c
end

-- The XPath of a CSS selector (what css() evaluates); raises on an invalid one.
function M.css_to_xpath(selector)
  local expr, err = translate(selector)
  if not expr then error("aqueue.html: " .. err, 2) end
  return expr
end

-- Evaluates and returns the result, raising (at the user's call) when the
-- evaluation fails: an unknown function, a variable (none are defined).
-- as_links: a node-set gives the strings links() resolves (see raw_links).
local function run(node, c, first, kind, text, level, as_links)
  if type(c) == "table" then -- (a walk: see walk_of)
    return core.select(node, c[1], c[2], c[3], first, as_links)
  end
  local result, err = core.eval(node, c, first, as_links)
  if err then error(format("aqueue.html: %s %q failed: %s", kind, text, err), level + 1) end
  return result
end

-- ---------------------------------------------------------------------------
-- links([selector])

-- The absolute links of a list of raw hrefs (aqueue.url_core: stripped,
-- resolved, kept for http, https, ftp and file, without fragments, each
-- once), loaded by the first links(): libcurl only for pages that ask.
local absolute_links

-- The URL relative links of the node's document resolve against: its first
-- <base href>, itself resolved against the base_url of parse; else that
-- base_url; nil when there is neither.
local function document_base(node)
  local base_url, href = core.base_url(node)
  if href then return absolute_links(base_url, { href })[1] or base_url end
  return base_url
end

-- The raw URLs of the selector's matches: its strings as they are (for
-- `::attr(name)`), the href (else the src) of its elements. Without a
-- selector, those of a::attr(href).
local function raw_links(node, selector, level)
  if selector == nil then return core.select(node, "a", "attribute", "href") end
  return run(node, compiled_css(selector, level + 1), false, "CSS selector", selector, level + 1, true)
end

-- ---------------------------------------------------------------------------
-- The methods of documents and nodes (text, attr and html are the C's).

-- A query method: node:method(text) compiles text with `compile` (cached)
-- and evaluates it; `first`: only the first match.
local function query(compile, kind, first)
  return function(node, text)
    local result = run(node, compile(text, 2), first, kind, text, 2)
    return result -- (not a tail call: the error levels count this frame)
  end
end

local xpath = query(compiled_xpath, "XPath", false)
local css = query(compiled_css, "CSS selector", false)
local css_first = query(compiled_css, "CSS selector", true)

-- node:links([selector]): the absolute URLs of the links in the node (the
-- whole document for the document), in page order, each once, without
-- fragments: of `a[href]` by default, else of what the selector selects
-- (elements: their href, else src; `::attr(name)`: those values). Resolved
-- against the document's base (see document_base); links that cannot be
-- made absolute, and schemes other than http, https, ftp and file, are left out.
local function links(node, selector)
  if selector ~= nil and type(selector) ~= "string" then
    error(format("aqueue.html: links() takes a CSS selector or nothing, got %s", type(selector)), 2)
  end
  local raw = raw_links(node, selector, 2)
  absolute_links = absolute_links or require("aqueue.url_core").absolute_links
  return absolute_links(document_base(node), raw)
end

function load_core()
  core = require("aqueue.html_core")
  local methods = core.methods
  methods.xpath, methods.css, methods.css_first, methods.links = xpath, css, css_first, links
end

return M
