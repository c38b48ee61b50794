-- Bulkhead lease prelude (mirrors seawall.stores._rules.lease_acquire). KEYS[1] lease hash;
-- each holder is a field 'h:<holder>' = '<lease end> <slot>'; each cancelled holder (an
-- acquisition whose answer was lost) is a field 'x:<holder>' = '<end>' until its lease would
-- have ended. ARGV: 1 now, 2 name, 3 max_concurrent, then the operation's own arguments from 4.
local function read_leases(key)
  local all = redis.call('HGETALL', key)
  local leases, tombs = {}, {}
  for i = 1, #all, 2 do
    local kind = string.sub(all[i], 1, 2)
    if kind == 'h:' then
      local ends, slot = string.match(all[i + 1], '^(%S+) (%d+)$')
      local e = number(ends, nil)
      if e == nil then
        e = NEVER -- unreadable: the lease counts as ended
        slot = '0'
      end
      leases[all[i]] = { ends = e, slot = tonumber(slot) }
    elseif kind == 'x:' then
      tombs[all[i]] = number(all[i + 1], nil) or NEVER
    end
  end
  return leases, tombs
end

-- Held records (see _common): the tables are read once and kept in step with every write
-- (HSET and HDEL still go out as they happen); the expiry is set once, at the end.
local function load_leases(key)
  local kept = held and held[key]
  if kept then
    return kept.leases, kept.tombs
  end
  local leases, tombs = read_leases(key)
  if held then
    keep(key, { leases = leases, tombs = tombs })
  end
  return leases, tombs
end

local function expire_leases(key, seconds)
  local function write()
    if redis.call('EXISTS', key) == 1 then
      expire(key, seconds)
    end
  end
  local kept = held and held[key]
  if not kept then
    return write()
  end
  kept.write = write
end
