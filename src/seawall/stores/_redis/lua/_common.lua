-- Shared prelude of every seawall script (prepended by seawall.stores._redis.scripts).
-- Numbers are IEEE doubles on both sides: Python passes repr(float), which tonumber reads
-- back exactly, and every float goes back as '%.17g', which Python's float() reads exactly.
-- "Never" is -inf on both sides (Python's float('-inf')); an absent field reads as never.
local NEVER = -math.huge
local EPSILON = 1e-9

-- A whole number prints the same digits with '%d', at less than half the cost of '%.17g'
-- (a batch prints several numbers per request); -0 keeps its sign as '%.17g' would. Only
-- within 32 bits: Lua 5.1's '%d' goes through a C long, 32 bits on 32-bit builds.
local function fmt(x)
  if x % 1 == 0 and x > -2147483648 and x < 2147483648 then -- false for inf and NaN
    if x == 0 and 1 / x < 0 then
      return '-0'
    end
    return string.format('%d', x)
  end
  return string.format('%.17g', x)
end

-- ARGV[1] is the client's now, or '' for the server's TIME (no client clock skew), read once
-- per script: every decision of one call is taken at the same instant.
local server_now = nil
local function clock(arg)
  if arg ~= '' then
    return tonumber(arg)
  end
  if server_now == nil then
    local t = redis.call('TIME')
    server_now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  end
  return server_now
end

-- fmt(now) for the members of one call, which share their instant: printed once.
local now_seen, now_text = nil, nil
local function fmt_now(now)
  if now ~= now_seen then
    now_seen, now_text = now, fmt(now)
  end
  return now_text
end

-- A receipt's lifetime (ARGV text in seconds) as whole milliseconds, at least 1, for PX;
-- worked out once per call, as every member passes the same.
local millis_of, millis_text = nil, nil
local function receipt_millis(seconds)
  if seconds ~= millis_of then
    millis_of = seconds
    millis_text = string.format('%d', math.max(1, math.ceil(tonumber(seconds) * 1000)))
  end
  return millis_text
end

-- A script deciding many requests (admit_many, settle) holds the records it reads: each is
-- read once, every later request sees it as the one before left it, and what a record's
-- last writer would have written is written once, at the end (write_held). nil in the
-- scripts of one operation, which read and write their own. key -> {write = function | nil,
-- and the prelude's own fields}.
local held, held_order = nil, nil

local function hold_records()
  held, held_order = {}, {}
end

local function keep(key, kept)
  held[key] = kept
  held_order[#held_order + 1] = key
  return kept
end

local function write_held()
  for _, key in ipairs(held_order) do
    local write = held[key].write
    if write ~= nil then
      write()
    end
  end
end

-- Expiry in whole seconds, rounded up, at least 1: no key lives
-- forever. The cap only keeps the number an integer for absurd inputs.
local function expire(key, seconds)
  local s = math.ceil(seconds)
  if s < 1 then
    s = 1
  elseif s > 315360000 then
    s = 315360000
  end
  redis.call('EXPIRE', key, string.format('%d', s))
end

-- A stored number, or nil when the text is not one (NaN included).
local function number(text, default)
  if not text then
    return default
  end
  local x = tonumber(text)
  if x == nil or x ~= x then
    return nil
  end
  return x
end
