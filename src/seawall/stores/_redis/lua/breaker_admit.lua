-- _breaker_core.admit. Returns reply('t', generation, probe_id, ...) when admitted, else
-- reply('w', seconds until it may be, '', ...).
local key = KEYS[1]
local now = clock(ARGV[1])
local s = load_breaker(key, now)
rebase(s, now)

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
save_breaker(key, s)
return reply(kind, a, b, tr, s)
