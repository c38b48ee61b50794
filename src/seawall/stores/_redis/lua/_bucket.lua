-- Token bucket prelude (mirrors seawall._core.limiter.Bucket and seawall.stores._rules).
-- KEYS[1] bucket hash. ARGV: 1 now, 2 interval, 3 burst, 4 name, 5 key ('' when keyed
-- is '0'), 6 keyed ('1' or '0'), then the operation's own arguments from 7.
local INTERVAL = tonumber(ARGV[2])
local BURST = tonumber(ARGV[3])
local SPAN = BURST * INTERVAL

-- fa = full_at, bu = blocked_until, ln = last_now; a corrupt record resets to empty
-- (tokens 0 from now: the safe reset), flagged so Python logs one warning.
local function read_bucket(key, now)
  local v = redis.call('HMGET', key, 'fa', 'bu', 'ln')
  local b = {
    fa = number(v[1], NEVER),
    bu = number(v[2], NEVER),
    ln = number(v[3], NEVER),
    exists = v[3] ~= false,
    corrupt = 0,
  }
  if b.fa == nil or b.bu == nil or b.ln == nil then
    b = { fa = now + SPAN, bu = NEVER, ln = now, exists = true, corrupt = 1 }
  end
  return b
end

-- _rules.rebase_bucket: a clock that went back moves every stamp back with it.
local function rebase(b, now)
  if now < b.ln then
    local shift = b.ln - now
    b.fa = b.fa - shift
    b.bu = b.bu - shift
  end
  b.ln = now
end

-- Writes the record and its expiry (_rules.bucket_ttl) in the same step.
local function write_bucket(key, b, now)
  if b.exists and b.corrupt == 0 then
    redis.call('HSET', key, 'fa', fmt(b.fa), 'bu', fmt(b.bu), 'ln', fmt(b.ln))
  else -- a new record also carries what status needs: kind, name, key, shape
    local fields = {
      'fa', fmt(b.fa), 'bu', fmt(b.bu), 'ln', fmt(b.ln),
      'kind', 'limiter', 'name', ARGV[4], 'interval', ARGV[2], 'burst', ARGV[3],
    }
    if ARGV[6] == '1' then
      table.insert(fields, 'key')
      table.insert(fields, ARGV[5])
    end
    redis.call('HSET', key, unpack(fields))
  end
  expire(key, math.max(0.0, b.fa - now, b.bu - now))
end

-- Held records (see _common): a later request sees the record as sound and existing, as the
-- first save left it; a new or unreadable one is still written whole (its shape too) at the end.
local function load_bucket(key, now)
  local kept = held and held[key]
  if kept then
    kept.b.exists, kept.b.corrupt = true, 0
    return kept.b
  end
  local b = read_bucket(key, now)
  if held then
    keep(key, { b = b, whole = not b.exists or b.corrupt ~= 0 })
  end
  return b
end

local function save_bucket(key, b, now)
  local kept = held and held[key]
  if not kept then
    return write_bucket(key, b, now)
  end
  kept.write = function()
    if kept.whole then
      b.exists = false
    end
    write_bucket(key, b, now)
  end
end

-- _limiter_core._describe: (whole tokens left, seconds until full).
local function describe(ahead)
  if ahead <= 0.0 then
    return math.floor(BURST + EPSILON), 0.0
  end
  return math.max(0, math.floor(BURST - ahead / INTERVAL + EPSILON)), ahead
end
