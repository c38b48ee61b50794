-- Shared prelude of every seawall script (prepended by seawall.stores._redis.scripts).
-- Numbers are IEEE doubles on both sides: Python passes repr(float), which tonumber reads
-- back exactly, and every float goes back as '%.17g', which Python's float() reads exactly.
-- "Never" is -inf on both sides (Python's float('-inf')); an absent field reads as never.
local NEVER = -math.huge
local EPSILON = 1e-9

local function fmt(x)
  return string.format('%.17g', x)
end

-- ARGV[1] is the client's now, or '' for the server's TIME (no client clock skew).
local function clock(arg)
  if arg ~= '' then
    return tonumber(arg)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
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
