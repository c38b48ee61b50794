-- _rules.lease_acquire. ARGV 4 lease seconds, 5 holder id ('' for none: renewals only),
-- 6 how many renewals n, 7 .. 6+n holders to renew, then holders to cancel.
-- Returns {wait (0 when taken), slot (-1 when not), holders after}.
local key = KEYS[1]
local now = clock(ARGV[1])
local max_concurrent = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local holder = ARGV[5]
local renewals = tonumber(ARGV[6])
local leases, tombs = load_leases(key)
for i = 7 + renewals, #ARGV do
  -- an acquisition whose answer was lost: its slot goes, and it may never be granted later
  local gone = ARGV[i]
  if leases['h:' .. gone] ~= nil then
    redis.call('HDEL', key, 'h:' .. gone)
    leases['h:' .. gone] = nil
  end
  tombs['x:' .. gone] = now + lease
  redis.call('HSET', key, 'x:' .. gone, fmt(now + lease))
end
local count = 0
for field, l in pairs(leases) do
  if l.ends <= now then
    redis.call('HDEL', key, field) -- a holder that died loses its slot when its lease ends
    leases[field] = nil
  else
    count = count + 1
  end
end
for field, ends in pairs(tombs) do
  if ends <= now then
    redis.call('HDEL', key, field)
    tombs[field] = nil
  end
end
local function free_slot(except)
  local used = {}
  for other, l in pairs(leases) do
    if other ~= except then
      used[l.slot] = true
    end
  end
  local s = 0
  while used[s] do
    s = s + 1
  end
  return s
end
for i = 7, 6 + renewals do
  -- still running, so still counted: a lease lost with the store's data comes back
  local kept = 'h:' .. ARGV[i]
  if tombs['x:' .. ARGV[i]] == nil then
    local l = leases[kept]
    if l == nil then
      l = { slot = free_slot(kept) }
      leases[kept] = l
      count = count + 1
    end
    l.ends = now + lease
    redis.call('HSET', key, kept, fmt(l.ends) .. ' ' .. string.format('%d', l.slot),
      'kind', 'bulkhead', 'name', ARGV[2], 'slots', ARGV[3])
  end
end
local wait, slot = 0.0, -1
local field = 'h:' .. holder
if holder == '' then
  wait = 0.0
elseif tombs['x:' .. holder] ~= nil then
  wait = lease -- told no already: never granted, whatever is free
elseif leases[field] ~= nil or count < max_concurrent then
  slot = free_slot(field)
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
-- Expiry: until the last lease or cancellation ends (the key is then as good as absent).
local last = now
for _, l in pairs(leases) do
  last = math.max(last, l.ends)
end
for _, ends in pairs(tombs) do
  last = math.max(last, ends)
end
expire_leases(key, last - now)
return { fmt(wait), slot, count }
