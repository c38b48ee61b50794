-- _breaker_core.record. ARGV 8 generation, 9 probe_id, 10 outcome, then, for a breaker with a
-- failure-rate or slow-call window (seawall._core.breaker_window), 11 duration,
-- 12 failure_rate_threshold, 13 slow_call_duration, 14 slow_call_rate_threshold ('' for off),
-- 15 window_size, 16 minimum_calls, 17 bucket width (0 for a count window), 18 window_buckets.
-- The window lives in the same hash: 'w' one digit per call of a count window (1 failed,
-- 2 slow, 3 both), 'wf'/'ws' its failures and slow calls; 'bk' the time window's buckets,
-- 'index:calls:failures:slow,...' oldest first. Returns reply('', ...).
local key = KEYS[1]
local now = clock(ARGV[1])
local gen = tonumber(ARGV[8])
local probe_id = tonumber(ARGV[9])
local outcome = tonumber(ARGV[10])
local s = load_breaker(key, now)
rebase(s, now)

local windowed = ARGV[12] ~= nil and (ARGV[12] ~= '' or ARGV[14] ~= '')
local window = nil

local function optional(text)
  if text == nil or text == '' then
    return nil
  end
  return tonumber(text)
end

-- The window as stored, or an empty one for a fresh or reset record.
local function load_window()
  local w = { flags = '', failures = 0, slow = 0, buckets = {} }
  if s.corrupt == 1 then
    return w
  end
  local v = redis.call('HMGET', key, 'w', 'wf', 'ws', 'bk')
  w.flags = v[1] or ''
  w.failures = tonumber(v[2] or '0') or 0
  w.slow = tonumber(v[3] or '0') or 0
  for i, c, f, sl in string.gmatch(v[4] or '', '([^:,]+):(%d+):(%d+):(%d+)') do
    table.insert(w.buckets, { tonumber(i), tonumber(c), tonumber(f), tonumber(sl) })
  end
  return w
end

local function save_window(w)
  local parts = {}
  for _, b in ipairs(w.buckets) do
    table.insert(parts, fmt(b[1]) .. ':' .. string.format('%d:%d:%d', b[2], b[3], b[4]))
  end
  redis.call('HSET', key, 'w', w.flags, 'wf', string.format('%d', w.failures),
    'ws', string.format('%d', w.slow), 'bk', table.concat(parts, ','))
end

-- _breaker_core._push_window, and breaker_window.expire / add_call for a time window.
local function push(w, failed, slow)
  local width = tonumber(ARGV[17])
  if width > 0 then
    local span = tonumber(ARGV[18])
    local index = math.floor(now / width)
    local b = w.buckets
    while #b > 0 and index - b[1][1] >= span do
      table.remove(b, 1)
    end
    if #b > 0 and b[#b][1] > index then
      local folded = { index, 0, 0, 0 } -- the clock went back: what came "later" counts now
      while #b > 0 and b[#b][1] >= index do
        local later = table.remove(b)
        folded[2] = folded[2] + later[2]
        folded[3] = folded[3] + later[3]
        folded[4] = folded[4] + later[4]
      end
      table.insert(b, folded)
    end
    if #b > 0 and b[#b][1] == index then
      b[#b][2] = b[#b][2] + 1
      b[#b][3] = b[#b][3] + failed
      b[#b][4] = b[#b][4] + slow
    else
      table.insert(b, { index, 1, failed, slow })
    end
    return
  end
  if #w.flags == tonumber(ARGV[15]) then
    local dropped = tonumber(string.sub(w.flags, 1, 1))
    w.failures = w.failures - dropped % 2
    w.slow = w.slow - math.floor(dropped / 2)
    w.flags = string.sub(w.flags, 2)
  end
  w.flags = w.flags .. string.format('%d', failed + 2 * slow)
  w.failures = w.failures + failed
  w.slow = w.slow + slow
end

-- _breaker_core._rate_exceeded.
local function rate_exceeded(w)
  local calls, failures, slow = #w.flags, w.failures, w.slow
  if tonumber(ARGV[17]) > 0 then
    calls, failures, slow = 0, 0, 0
    for _, b in ipairs(w.buckets) do
      calls = calls + b[2]
      failures = failures + b[3]
      slow = slow + b[4]
    end
  end
  if calls == 0 or calls < tonumber(ARGV[16]) then
    return false
  end
  local fr, sr = optional(ARGV[12]), optional(ARGV[14])
  if fr ~= nil and failures / calls >= fr then
    return true
  end
  return sr ~= nil and slow / calls >= sr
end

local function record()
  if outcome == SUCCESS then
    s.ok = s.ok + 1
  elseif outcome == FAILURE then
    s.bad = s.bad + 1
  else
    s.neu = s.neu + 1
  end
  if gen ~= s.gen then
    return nil -- admitted in another era: counted, ignored by the machine
  end
  if probe_id ~= 0 then
    if s.probes[probe_id] == nil then
      return nil -- its lease ran out and the slot went to another probe
    end
    s.probes[probe_id] = nil
    if outcome == FAILURE then
      s.fc = s.fc + 1
      return move(s, 'probe_failed', now)
    end
    if outcome == SUCCESS then
      s.sc = s.sc + 1
      if s.sc >= SUCCESS_THRESHOLD then
        return move(s, 'probes_succeeded', now)
      end
    end
    return nil
  end
  if s.st ~= CLOSED or outcome == NEUTRAL then
    return nil
  end
  local failed = 0
  if outcome == SUCCESS then
    s.fc = 0
  else
    s.fc = s.fc + 1
    failed = 1
  end
  if windowed then
    local limit = optional(ARGV[13])
    local slow = 0
    if limit ~= nil and tonumber(ARGV[11]) >= limit then
      slow = 1
    end
    window = load_window()
    push(window, failed, slow)
  end
  if s.dis == 1 then
    return nil
  end
  if s.fc >= MAX_FAILURES or (window ~= nil and rate_exceeded(window)) then
    return move(s, 'tripped', now)
  end
  return nil
end

local tr = record()
save_breaker(key, s)
if tr ~= nil or s.corrupt == 1 then
  -- A state change empties the window (_breaker_core._move); so does a reset record.
  redis.call('HDEL', key, 'w', 'wf', 'ws', 'bk')
elseif window ~= nil then
  save_window(window)
end
return reply('', '', '', tr, s)
