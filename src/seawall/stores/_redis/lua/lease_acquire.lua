-- _rules.lease_acquire. ARGV 4 lease seconds, 5 holder id.
-- Returns {wait (0 when taken), slot (-1 when not), holders after}.
local key = KEYS[1]
local now = clock(ARGV[1])
local max_concurrent = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local leases = load_leases(key)
local count = 0
for field, l in pairs(leases) do
  if l.ends <= now then
    redis.call('HDEL', key, field) -- a holder that died loses its slot when its lease ends
    leases[field] = nil
  else
    count = count + 1
  end
end
local wait, slot = 0.0, -1
if count < max_concurrent then
  local used = {}
  for _, l in pairs(leases) do
    used[l.slot] = true
  end
  slot = 0
  while used[slot] do
    slot = slot + 1
  end
  local field = 'h:' .. ARGV[5]
  if leases[field] == nil then
    count = count + 1
  end
  leases[field] = { ends = now + lease, slot = slot }
  redis.call('HSET', key, field, fmt(now + lease) .. ' ' .. string.format('%d', slot),
    'kind', 'bulkhead', 'name', ARGV[2], 'slots', ARGV[3])
else
  local earliest = math.huge
  for _, l in pairs(leases) do
    earliest = math.min(earliest, l.ends)
  end
  wait = math.max(earliest - now, 2 * EPSILON)
end
-- Expiry: until the last lease ends (the key is then indistinguishable from absent).
local last = now
for _, l in pairs(leases) do
  last = math.max(last, l.ends)
end
if redis.call('EXISTS', key) == 1 then
  expire(key, last - now)
end
return { fmt(wait), slot, count }
