-- aqueue.css_xpath: CSS selectors -> XPath 1.0, the way cssselect's
-- HTMLTranslator does with parsel's pseudo-elements (what Scrapy's
-- response.css runs), so a selector selects here what it selects there.
--
--   local xpath, err = require("aqueue.css_xpath").translate("ul > li.x a::attr(href)")
--   -- "descendant-or-self::ul/li[@class and contains(concat(' ', normalize-space(@class), ' '), ' x ')]"
--   --   .. "/descendant-or-self::*/a/@href"
--
-- Supported: type selectors and `*`, `#id`, `.class`, `[a]`, `[a=v]`, `[a~=v]`,
-- `[a|=v]`, `[a^=v]`, `[a$=v]`, `[a*=v]`, the combinators ` `, `>`, `+`, `~`,
-- `:nth-child(an+b | odd | even)`, `:first-child`, `:last-child`, `:not(...)`
-- of one compound selector, groups `a, b`, and Scrapy's `::text` (text nodes)
-- and `::attr(name)` (attribute values). Element and attribute names are
-- matched in lower case (HTML's are); values as written.
--
-- It runs once per selector string (aqueue.html caches the result), so it is
-- written for clarity, in Lua: a tokenizer as cssselect's, a recursive-descent
-- parser that builds the XPath as it goes. A selector it cannot read gives
-- nil and a message that says what was expected and at which character.
local type, tonumber, error, pcall, select = type, tonumber, error, pcall, select
local byte, sub, find, lower, format, char = string.byte, string.sub, string.find, string.lower, string.format, string.char
local concat = table.concat
local floor, abs = math.floor, math.abs

local M = {}

-- Raised inside the translator and caught by translate(): { pos =, msg = }.
local function fail(pos, msg, ...)
  error({ pos = pos, msg = format(msg, ...) }, 0)
end

-- ---------------------------------------------------------------------------
-- Tokens: { type = "space" | "ident" | "hash" | "string" | "number" | "delim" | "end",
-- value =, pos = } (pos: the character where it starts, from 1).

-- The code point of a hexadecimal escape, as UTF-8 (a code point beyond
-- Unicode becomes U+FFFD, as in cssselect).
local function utf8_char(cp)
  if cp > 0x10FFFF then cp = 0xFFFD end
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40, 0x80 + floor(cp / 0x40) % 0x40,
    0x80 + cp % 0x40)
end

-- An escape at s[i] == "\": returns its text and the index after it, or nil
-- when it is not one (a backslash before a line break or at the end).
local function read_escape(s, i)
  local hex = s:match("^%x%x?%x?%x?%x?%x?", i + 1)
  if hex then
    local j = i + 1 + #hex
    if sub(s, j, j + 1) == "\r\n" then
      j = j + 2
    elseif find(sub(s, j, j), "^[ \n\r\t\f]") then
      j = j + 1
    end
    return utf8_char(tonumber(hex, 16)), j
  end
  local c = sub(s, i + 1, i + 1)
  if c == "" or find(c, "^[\n\r\f]") then return nil end
  return c, i + 2
end

-- A name character at s[i] ([_a-zA-Z0-9-], non-ASCII, or an escape): its
-- text and the next index, or nil. `start`: only what may start a name (no
-- digit, no '-').
local function read_name_char(s, i, start)
  local b = byte(s, i)
  if not b then return nil end
  if b == 92 then return read_escape(s, i) end -- "\"
  if b >= 128 or b == 95 or (b >= 65 and b <= 90) or (b >= 97 and b <= 122) then
    return sub(s, i, i), i + 1
  end
  if not start and ((b >= 48 and b <= 57) or b == 45) then return sub(s, i, i), i + 1 end
  return nil
end

-- The characters of a name from s[i]; returns its text and the next index.
local function read_name_rest(s, i, parts)
  while true do
    local c, j = read_name_char(s, i, false)
    if not c then return concat(parts), i end
    parts[#parts + 1] = c
    i = j
  end
end

-- An identifier at s[i] (-?nmstart nmchar*): its value and the next index, or nil.
local function read_ident(s, i)
  local j = i
  local parts = {}
  if sub(s, j, j) == "-" then
    parts[1] = "-"
    j = j + 1
  end
  local c, k = read_name_char(s, j, true)
  if not c then return nil end
  parts[#parts + 1] = c
  return read_name_rest(s, k, parts)
end

-- A quoted string from its opening quote at s[i]: its value and the next index.
local function read_string(s, i)
  local quote = sub(s, i, i)
  local parts = {}
  local j = i + 1
  while true do
    local c = sub(s, j, j)
    if c == "" then fail(i, "the string is not closed") end
    if c == quote then return concat(parts), j + 1 end
    if c == "\\" then
      local nl = s:match("^\\(\r?[\n\r\f])", j)
      if nl then -- an escaped line break continues the string
        j = j + 1 + #nl
      else
        local e, k = read_escape(s, j)
        if not e then fail(j, "invalid escape in a string") end
        parts[#parts + 1] = e
        j = k
      end
    elseif find(c, "^[\n\r\f]") then
      fail(i, "a line break inside a string")
    else
      parts[#parts + 1] = c
      j = j + 1
    end
  end
end

local function tokenize(s)
  local tokens, i, n = {}, 1, #s
  local function add(t, v, pos) tokens[#tokens + 1] = { type = t, value = v, pos = pos } end
  while i <= n do
    local ws = s:match("^[ \t\r\n\f]+", i)
    local value, j
    if ws then
      add("space", " ", i)
      i = i + #ws
    else
      value, j = read_ident(s, i)
      if value then
        add("ident", value, i)
        i = j
      elseif sub(s, i, i) == "#" and read_name_char(s, i + 1, false) then
        value, j = read_name_rest(s, i + 1, {})
        add("hash", value, i)
        i = j
      elseif sub(s, i, i) == "'" or sub(s, i, i) == '"' then
        value, j = read_string(s, i)
        add("string", value, i)
        i = j
      else
        local num = s:match("^[+-]?%d*%.%d+", i) or s:match("^[+-]?%d+", i)
        if num then
          add("number", num, i)
          i = i + #num
        elseif sub(s, i, i + 1) == "/*" then
          local close = find(s, "*/", i + 2, true)
          i = close and close + 2 or n + 1
        else
          add("delim", sub(s, i, i), i)
          i = i + 1
        end
      end
    end
  end
  add("end", nil, n + 1)
  return tokens
end

-- ---------------------------------------------------------------------------
-- XPath expressions under construction, as cssselect's XPathExpr:
-- path .. element .. "[" .. condition .. "]", with parsel's text/attribute tail.

local function new_expr(element)
  return { path = "", element = element or "*", condition = "", textnode = false, attribute = nil }
end

local function add_condition(x, cond)
  if x.condition ~= "" then
    x.condition = format("(%s) and (%s)", x.condition, cond)
  else
    x.condition = cond
  end
  return x
end

-- XPath string literal of s (concat() when it holds both kinds of quote).
local function literal(s)
  if not find(s, "'", 1, true) then return "'" .. s .. "'" end
  if not find(s, '"', 1, true) then return '"' .. s .. '"' end
  local out, i = {}, 1 -- runs of single quotes in "...", the rest in '...'
  while i <= #s do
    local a, b = find(s, "'+", i)
    if a == i then
      out[#out + 1] = '"' .. sub(s, a, b) .. '"'
      i = b + 1
    else
      local e = (a or #s + 1) - 1
      out[#out + 1] = "'" .. sub(s, i, e) .. "'"
      i = e + 1
    end
  end
  return "concat(" .. concat(out, ",") .. ")"
end

local function add_name_test(x)
  if x.element == "*" then return end
  add_condition(x, "name() = " .. literal(x.element))
  x.element = "*"
end

local function base_string(x)
  local s = x.path .. x.element
  if x.condition ~= "" then s = s .. "[" .. x.condition .. "]" end
  return s
end

-- The expression as text, with parsel's tail for ::text and ::attr().
local function expr_string(x)
  local s = base_string(x)
  if x.textnode then
    if s == "*" then
      s = "text()"
    elseif sub(s, -5) == "::*/*" then
      s = sub(s, 1, -4) .. "text()"
    else
      s = s .. "/text()"
    end
  end
  if x.attribute then
    if sub(s, -5) == "::*/*" then s = sub(s, 1, -3) end
    s = s .. "/@" .. x.attribute
  end
  return s
end

local function join(left, combiner, right)
  local path = base_string(left) .. combiner
  if right.path ~= "*/" then path = path .. right.path end
  left.path = path
  left.element = right.element
  left.condition = right.condition
  left.textnode, left.attribute = right.textnode, right.attribute
  return left
end

local COMBINATORS = {
  [" "] = function(l, r) return join(l, "/descendant-or-self::*/", r) end,
  [">"] = function(l, r) return join(l, "/", r) end,
  ["+"] = function(l, r)
    local x = join(l, "/following-sibling::", r)
    add_name_test(x)
    return add_condition(x, "position() = 1")
  end,
  ["~"] = function(l, r) return join(l, "/following-sibling::", r) end,
}

-- Names that XPath can take as they are (cssselect's is_safe_name).
local function is_safe_name(s)
  return find(s, "^[a-zA-Z_][a-zA-Z0-9_%.%-]*$") ~= nil
end

-- ---------------------------------------------------------------------------
-- Attribute selectors, as cssselect's xpath_attrib_*.

local ATTRIB = {
  exists = function(x, name) return add_condition(x, name) end,
  ["="] = function(x, name, value) return add_condition(x, format("%s = %s", name, literal(value))) end,
  ["~="] = function(x, name, value)
    if value ~= "" and not find(value, "[ \t\r\n\f]") then
      return add_condition(x, format("%s and contains(concat(' ', normalize-space(%s), ' '), %s)", name, name,
        literal(" " .. value .. " ")))
    end
    return add_condition(x, "0")
  end,
  ["|="] = function(x, name, value)
    return add_condition(x, format("%s and (%s = %s or starts-with(%s, %s))", name, name, literal(value), name,
      literal(value .. "-")))
  end,
  ["^="] = function(x, name, value)
    if value == "" then return add_condition(x, "0") end
    return add_condition(x, format("%s and starts-with(%s, %s)", name, name, literal(value)))
  end,
  ["$="] = function(x, name, value)
    if value == "" then return add_condition(x, "0") end
    return add_condition(x, format("%s and substring(%s, string-length(%s)-%d) = %s", name, name, name, #value - 1,
      literal(value)))
  end,
  ["*="] = function(x, name, value)
    if value == "" then return add_condition(x, "0") end
    return add_condition(x, format("%s and contains(%s, %s)", name, name, literal(value)))
  end,
}

local function attrib_name(name)
  name = lower(name)
  if is_safe_name(name) then return "@" .. name end
  return "attribute::*[name() = " .. literal(name) .. "]"
end

-- ---------------------------------------------------------------------------
-- :nth-child(an+b), as cssselect's xpath_nth_child_function.

-- (a, b) of an an+b argument, or nil.
local function parse_series(s)
  s = lower(s)
  if s == "odd" then return 2, 1 end
  if s == "even" then return 2, 0 end
  if s == "n" then return 1, 0 end
  local function int(t) return find(t, "^[+-]?%d+$") and tonumber(t) or nil end
  local at = find(s, "n", 1, true)
  if not at then
    local b = int(s)
    return b and 0, b
  end
  local as, bs = sub(s, 1, at - 1), sub(s, at + 1)
  local a
  if as == "" then
    a = 1
  elseif as == "-" or as == "+" then
    a = as == "-" and -1 or 1
  else
    a = int(as)
  end
  local b = bs == "" and 0 or int(bs)
  if a and b then return a, b end
  return nil
end

local function nth_child(x, a, b)
  local b1 = b - 1
  if a == 1 and b1 <= 0 then return x end
  if a < 0 and b1 < 0 then return add_condition(x, "0") end
  local count = "count(preceding-sibling::*)"
  if a == 0 then return add_condition(x, format("%s = %d", count, b1)) end
  local exprs = {}
  if a > 0 then
    if b1 > 0 then exprs[#exprs + 1] = format("%s >= %d", count, b1) end
  else
    exprs[#exprs + 1] = format("%s <= %d", count, b1)
  end
  if a ~= 1 and a ~= -1 then
    local left = count
    local b_neg = (-b1) % abs(a)
    if b_neg ~= 0 then left = format("(%s +%d)", left, b_neg) end
    exprs[#exprs + 1] = format("%s mod %d = 0", left, a)
  end
  if #exprs > 1 then
    for i = 1, #exprs do exprs[i] = "(" .. exprs[i] .. ")" end
  end
  if #exprs == 0 then return x end
  return add_condition(x, concat(exprs, " and "))
end

-- ---------------------------------------------------------------------------
-- The parser: a token stream and cssselect's grammar.

local function describe(t)
  if t.type == "end" then return "the end of the selector" end
  if t.type == "space" then return "a space" end
  if t.type == "string" then return format("the string %q", t.value) end
  return format("'%s'", t.type == "hash" and "#" .. t.value or t.value)
end

local function new_stream(tokens)
  local st = { i = 1 }
  function st.peek() return tokens[st.i] end
  function st.next()
    local t = tokens[st.i]
    if t.type ~= "end" then st.i = st.i + 1 end
    return t
  end
  function st.skip_ws()
    if tokens[st.i].type == "space" then st.i = st.i + 1 end
  end
  function st.is_delim(t, ...)
    if t.type ~= "delim" then return false end
    for k = 1, select("#", ...) do
      if t.value == select(k, ...) then return true end
    end
    return false
  end
  function st.expect_ident(what)
    local t = st.next()
    if t.type ~= "ident" then fail(t.pos, "expected %s, got %s", what, describe(t)) end
    return t.value
  end
  -- A name or a quoted string (an attribute's value, ::attr's name): its token.
  function st.expect_value(what)
    st.skip_ws()
    local t = st.next()
    if t.type ~= "ident" and t.type ~= "string" then fail(t.pos, "expected %s, got %s", what, describe(t)) end
    return t
  end
  -- The delimiter c after optional white space.
  function st.expect_close(c, what)
    st.skip_ws()
    local t = st.next()
    if not st.is_delim(t, c) then fail(t.pos, "expected %s, got %s", what, describe(t)) end
  end
  return st
end

-- [name op value] after the "[".
local function parse_attrib(x, st)
  st.skip_ws()
  local t = st.next()
  if t.type ~= "ident" then
    if st.is_delim(t, "*", "|") then fail(t.pos, "namespaces in attribute selectors are not supported") end
    fail(t.pos, "expected an attribute name, got %s", describe(t))
  end
  local name = attrib_name(t.value)
  st.skip_ws()
  t = st.next()
  local op
  if st.is_delim(t, "]") then return ATTRIB.exists(x, name) end
  if st.is_delim(t, "=") then
    op = "="
  elseif st.is_delim(t, "~", "|", "^", "$", "*") and st.is_delim(st.peek(), "=") then
    op = t.value .. "="
    st.next()
  else
    fail(t.pos, "expected ']' or an operator (= ~= |= ^= $= *=), got %s", describe(t))
  end
  local v = st.expect_value("a value (a name or a quoted string)")
  st.expect_close("]", "']'")
  return ATTRIB[op](x, name, v.value)
end

-- The raw text of a function's argument up to its ")", tokens joined (as
-- cssselect's parse_arguments and parse_series).
local function read_arguments(st, open)
  local parts = {}
  while true do
    st.skip_ws()
    local t = st.next()
    if t.type == "ident" or t.type == "number" or st.is_delim(t, "+", "-") then
      parts[#parts + 1] = t.value
    elseif st.is_delim(t, ")") then
      return concat(parts)
    elseif t.type == "end" then
      fail(open, "the '(' is not closed")
    else
      fail(t.pos, "expected an argument, got %s", describe(t))
    end
  end
end

local PSEUDO_CLASSES = {
  ["first-child"] = function(x) return add_condition(x, "count(preceding-sibling::*) = 0") end,
  ["last-child"] = function(x) return add_condition(x, "count(following-sibling::*) = 0") end,
}

local parse_compound

-- :not( compound ) after "not(".
local function parse_negation(x, st, open)
  local sub_x, pseudo = parse_compound(st, true)
  local t = st.next()
  if pseudo then fail(t.pos, "a pseudo-element inside :not()") end
  if not st.is_delim(t, ")") then
    fail(t.pos, t.type == "end" and "the '(' of :not( is not closed" or "expected ')', got %s", describe(t))
  end
  add_name_test(sub_x)
  if sub_x.condition ~= "" then return add_condition(x, "not(" .. sub_x.condition .. ")") end
  return add_condition(x, "0")
end

-- After "::": text or attr(name). Returns the pseudo-element { text = true } or
-- { attr = name }.
local function parse_pseudo_element(st, at)
  local name = lower(st.expect_ident("a pseudo-element name (text or attr)"))
  if name == "text" and not st.is_delim(st.peek(), "(") then return { text = true } end
  if name == "attr" and st.is_delim(st.peek(), "(") then
    st.next()
    local t = st.expect_value("an attribute name in ::attr()")
    st.expect_close(")", "')' after the attribute name")
    if not is_safe_name(t.value) then fail(t.pos, "'%s' is not an attribute name ::attr() can select", t.value) end
    return { attr = lower(t.value) }
  end
  fail(at, "the pseudo-element ::%s is not supported (::text and ::attr(name) are)", name)
end

-- One compound selector (type, then #id .class [attr] :pseudo...); returns its
-- expression and its pseudo-element, if any. In :not(), it ends at ")".
function parse_compound(st, inside_negation)
  st.skip_ws()
  local start = st.i
  local t = st.peek()
  local x
  if t.type == "ident" or st.is_delim(t, "*") then
    st.next()
    if st.is_delim(st.peek(), "|") then fail(st.peek().pos, "namespaces are not supported") end
    if t.type == "ident" then
      local name = lower(t.value)
      x = new_expr(name)
      if not is_safe_name(name) then add_name_test(x) end
    else
      x = new_expr("*")
    end
  else
    x = new_expr("*")
  end
  local pseudo
  while true do
    t = st.peek()
    if t.type == "space" or t.type == "end" or st.is_delim(t, ",", "+", ">", "~")
      or (inside_negation and st.is_delim(t, ")")) then
      break
    end
    if pseudo then fail(t.pos, "a pseudo-element must end its selector, got %s after it", describe(t)) end
    if t.type == "hash" then
      st.next()
      ATTRIB["="](x, "@id", t.value)
    elseif st.is_delim(t, ".") then
      st.next()
      ATTRIB["~="](x, "@class", st.expect_ident("a class name after '.'"))
    elseif st.is_delim(t, "[") then
      st.next()
      parse_attrib(x, st)
    elseif st.is_delim(t, ":") then
      st.next()
      if st.is_delim(st.peek(), ":") then
        st.next()
        pseudo = parse_pseudo_element(st, t.pos)
      else
        local name_token = st.peek()
        local name = lower(st.expect_ident("a pseudo-class name after ':'"))
        if st.is_delim(st.peek(), "(") then
          local open = st.next().pos
          if name == "not" then
            if inside_negation then fail(name_token.pos, ":not() inside :not()") end
            parse_negation(x, st, open)
          elseif name == "nth-child" then
            local arg = read_arguments(st, open)
            local a, b = parse_series(arg)
            if not a then fail(name_token.pos, "invalid argument '%s' to :nth-child() (an+b, odd or even)", arg) end
            nth_child(x, a, b)
          else
            fail(name_token.pos, "the pseudo-class :%s() is not supported", name)
          end
        elseif PSEUDO_CLASSES[name] then
          PSEUDO_CLASSES[name](x)
        else
          fail(name_token.pos, "the pseudo-class :%s is not supported", name)
        end
      end
    else
      fail(t.pos, "expected a selector, got %s", describe(t))
    end
  end
  if st.i == start then fail(st.peek().pos, "expected a selector, got %s", describe(st.peek())) end
  return x, pseudo
end

-- One selector of a group: compounds joined by combinators.
local function parse_selector(st)
  local x, pseudo = parse_compound(st, false)
  while true do
    st.skip_ws()
    local t = st.peek()
    if t.type == "end" or st.is_delim(t, ",") then break end
    if pseudo then fail(t.pos, "a pseudo-element must end its selector, got %s after it", describe(t)) end
    local combinator = " "
    if st.is_delim(t, "+", ">", "~") then
      combinator = st.next().value
      st.skip_ws()
    end
    local right
    right, pseudo = parse_compound(st, false)
    x = COMBINATORS[combinator](x, right)
  end
  if pseudo then
    if pseudo.text then x.textnode = true else x.attribute = pseudo.attr end
  end
  return "descendant-or-self::" .. expr_string(x)
end

-- Returns the XPath of a group of CSS selectors, or nil and a message naming
-- the selector and the character where reading it failed.
function M.translate(css)
  if type(css) ~= "string" then return nil, format("a CSS selector must be a string, got %s", type(css)) end
  local ok, result = pcall(function()
    local st = new_stream(tokenize(css))
    local parts = {}
    st.skip_ws()
    while true do
      parts[#parts + 1] = parse_selector(st)
      if st.is_delim(st.peek(), ",") then
        st.next()
        st.skip_ws()
      else
        break
      end
    end
    return concat(parts, " | ")
  end)
  if ok then return result end
  if type(result) ~= "table" then error(result, 0) end -- a bug of this file: not the selector's fault
  return nil, format("invalid CSS selector %q: %s at character %d", css, result.msg, result.pos)
end

return M
