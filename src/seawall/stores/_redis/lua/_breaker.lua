-- Circuit breaker prelude (mirrors seawall._core.breaker for configs without a window, and
-- seawall.stores._rules.rebase_breaker). KEYS[1] breaker hash. ARGV: 1 now, 2 name,
-- 3 max_failures, 4 reset_timeout, 5 half_open_max_calls, 6 success_threshold,
-- 7 stale_attempt_timeout, then the operation's own arguments from 8.
local CLOSED, OPEN, HALF_OPEN = 1, 2, 3
local STATE_NAMES = { 'closed', 'open', 'half_open' }
local MAX_FAILURES = tonumber(ARGV[3])
local RESET_TIMEOUT = tonumber(ARGV[4])
local HALF_OPEN_MAX = tonumber(ARGV[5])
local SUCCESS_THRESHOLD = tonumber(ARGV[6])
local STALE = tonumber(ARGV[7])
local SUCCESS, FAILURE, NEUTRAL = 0, 1, 2

-- _breaker_core._ALLOWED: which reason may move which state where.
local ALLOWED = {
  [CLOSED] = { tripped = OPEN, forced_open = OPEN },
  [OPEN] = { reset_timeout_elapsed = HALF_OPEN, reset = CLOSED },
  [HALF_OPEN] = {
    probe_failed = OPEN, probes_succeeded = CLOSED, forced_open = OPEN, reset = CLOSED,
  },
}

-- st state, gen generation, fc failure_count, oa opened_at, sc successes (of probes),
-- np next_probe, iso isolated, dis disabled, ok/bad/rej/neu call counters,
-- chg state_changes, ln the latest now seen; pr the probes, 'id=admitted_at,...'.
local FIELDS = { 'st', 'gen', 'fc', 'oa', 'sc', 'np', 'iso', 'dis', 'ok', 'bad', 'rej', 'neu',
  'chg', 'ln' }

local function fresh(now)
  return { st = CLOSED, gen = 0, fc = 0, oa = 0.0, sc = 0, np = 1, iso = 0, dis = 0, ok = 0,
    bad = 0, rej = 0, neu = 0, chg = 0, ln = now, probes = {}, corrupt = 0 }
end

local function parse_probes(text)
  local probes = {}
  for id, at in string.gmatch(text, '(%d+)=([^,]+)') do
    local t = number(at, nil)
    if t == nil then
      return nil
    end
    probes[tonumber(id)] = t
  end
  return probes
end

-- An absent record is a fresh breaker first seen at now; a corrupt one is reset (flagged).
local function read_breaker(key, now)
  local v = redis.call('HMGET', key, 'pr', unpack(FIELDS))
  if not v[2] then
    return fresh(now)
  end
  local s = { probes = parse_probes(v[1] or ''), corrupt = 0 }
  for i, f in ipairs(FIELDS) do
    s[f] = number(v[i + 1], nil)
    if s[f] == nil or s.probes == nil then
      s = fresh(now)
      s.corrupt = 1
      return s
    end
  end
  return s
end

local function probe_count(s)
  local n = 0
  for _ in pairs(s.probes) do
    n = n + 1
  end
  return n
end

-- _rules.rebase_breaker: a clock that went back moves the stamps back with it.
local function rebase(s, now)
  if now < s.ln then
    local shift = s.ln - now
    s.oa = s.oa - shift
    for id, at in pairs(s.probes) do
      s.probes[id] = at - shift
    end
  end
  s.ln = now
end

-- _breaker_core._move; returns the transition {old, new, reason, at}.
local function move(s, reason, now)
  local old = s.st
  local new = ALLOWED[old][reason]
  if new == nil then
    error('illegal breaker transition from ' .. old .. ' on ' .. reason)
  end
  s.st = new
  s.gen = s.gen + 1
  s.chg = s.chg + 1
  if new ~= OPEN then
    s.fc = 0 -- kept while open (see _breaker_core._move)
  end
  s.sc = 0
  s.probes = {}
  s.iso = 0
  s.dis = 0
  if new == OPEN then
    s.oa = now
  end
  return { old, new, reason, now }
end

-- Writes the record and its expiry in the same step: a day, or twice an open period
-- plus a probe lease if longer, after the last write.
local function write_breaker(key, s)
  local fields = { 'kind', 'breaker', 'name', ARGV[2], 'reset_timeout', ARGV[4] }
  for _, f in ipairs(FIELDS) do
    table.insert(fields, f)
    table.insert(fields, fmt(s[f]))
  end
  local probes = {}
  for id, at in pairs(s.probes) do
    table.insert(probes, string.format('%d', id) .. '=' .. fmt(at))
  end
  table.insert(fields, 'pr')
  table.insert(fields, table.concat(probes, ','))
  redis.call('HSET', key, unpack(fields))
  expire(key, math.max(86400.0, 2.0 * (RESET_TIMEOUT + STALE)))
end

-- Held records (see _common): a later request sees the record as the one before left it
-- (sound: the first save wrote a reset record whole); written once, at the end.
local function load_breaker(key, now)
  local kept = held and held[key]
  if kept then
    kept.s.corrupt = 0
    return kept.s
  end
  local s = read_breaker(key, now)
  if held then
    keep(key, { s = s })
  end
  return s
end

local function save_breaker(key, s)
  local kept = held and held[key]
  if not kept then
    return write_breaker(key, s)
  end
  kept.s = s
  kept.write = function()
    write_breaker(key, s)
  end
end

-- Reply: {kind, a, b, has_transition, old, new, reason, at, corrupt}.
local function reply(kind, a, b, tr, s)
  if tr == nil then
    return { kind, a, b, 0, '', '', '', '', s.corrupt }
  end
  return { kind, a, b, 1, tr[1], tr[2], tr[3], fmt(tr[4]), s.corrupt }
end
