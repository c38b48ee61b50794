-- _rules.breaker_admit_held. ARGV 8 receipt lifetime (seconds), 9 holder id ('' for none),
-- then holders whose answer was lost (their probes are given back). A receipt is the key
-- KEYS[1]..':r:'..holder (same hash slot): '<generation> <probe id>' of a probe, or 'x' once
-- its holder was cancelled. Redis expires it.
-- Returns reply('t', generation, probe_id, ...) when admitted, else
-- reply('w', seconds until it may be, '', ...).
local key = KEYS[1]
local now = clock(ARGV[1])
local s = load_breaker(key, now)
rebase(s, now)
local receipt_ms = receipt_millis(ARGV[8])
local holder = ARGV[9]
for i = 10, #ARGV do
  local gone = key .. ':r:' .. ARGV[i]
  local gen, id = string.match(redis.call('GET', gone) or '', '^(%S+) (%S+)$')
  if gen ~= nil and tonumber(gen) == s.gen then
    s.probes[tonumber(id)] = nil -- as if it never ran: no outcome counted
  end
  redis.call('SET', gone, 'x', 'PX', receipt_ms)
end

local function admit_probe()
  local n = probe_count(s)
  if n >= HALF_OPEN_MAX then
    for id, at in pairs(s.probes) do
      if now - at >= STALE then
        s.probes[id] = nil
        n = n - 1
      end
    end
  end
  if n >= HALF_OPEN_MAX then
    s.rej = s.rej + 1
    local oldest = math.huge
    for _, at in pairs(s.probes) do
      oldest = math.min(oldest, at)
    end
    return 'w', fmt(math.max(oldest + STALE - now, 0.0)), ''
  end
  local id = s.np
  s.np = s.np + 1
  s.probes[id] = now
  return 't', fmt(s.gen), fmt(id)
end

local tr = nil
if s.st == CLOSED then
  save_breaker(key, s)
  return reply('t', fmt(s.gen), '0', nil, s)
end
if s.st == OPEN then
  if s.iso == 1 then
    s.rej = s.rej + 1
    save_breaker(key, s)
    return reply('w', fmt(RESET_TIMEOUT), '', nil, s)
  end
  if now < s.oa then
    -- Time went backwards: restart the period from here, so it can never wedge.
    s.oa = now
  end
  local remaining = s.oa + RESET_TIMEOUT - now
  if remaining > 0 then
    s.rej = s.rej + 1
    save_breaker(key, s)
    return reply('w', fmt(remaining), '', nil, s)
  end
  tr = move(s, 'reset_timeout_elapsed', now)
end
local kind, a, b = admit_probe()
if kind == 't' and holder ~= '' then
  -- The receipt; NX: a holder cancelled already (told no) is never admitted nor counted.
  local receipt = key .. ':r:' .. holder
  if not redis.call('SET', receipt, a .. ' ' .. b, 'PX', receipt_ms, 'NX') then
    s.probes[tonumber(b)] = nil
    s.np = s.np - 1
    kind, a, b = 'w', fmt(math.huge), ''
  end
end
save_breaker(key, s)
return reply(kind, a, b, tr, s)
