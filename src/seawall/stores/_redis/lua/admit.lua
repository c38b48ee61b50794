-- One request's admission (mirrors seawall.stores._admit.decide, with holder ids): every
-- limit all or nothing, then the bulkhead lease, then the breaker; a later gate's refusal
-- gives back what an earlier one granted. The gates' code is the single operations' own,
-- called as functions (see scripts.py): bucket_api, lease_acquire, breaker_admit.
-- KEYS: one bucket per limit, then the bulkhead's lease hash, then the breaker (all in one
-- hash slot). ARGV: 1 now, 2 holder id, 3 receipt lifetime (s), 4 n limits; per limit 6:
-- interval, burst, name, key, keyed, cost; bulkhead 4: has ('1'/'0'), name, max_concurrent,
-- lease; breaker 7: has, name, max_failures, reset_timeout, half_open_max_calls,
-- success_threshold, stale_attempt_timeout; then n + 2 counts of lost holder ids (per limit,
-- bulkhead, breaker) and the ids themselves, in that order.
-- Returns {refused ('' | 'limit' | 'bulkhead' | 'breaker' | 'lost'), retry_after, slot,
-- gates reached (0 limits, 1 bulkhead, 2 breaker), corrupt, the breaker's 9-item reply
-- (or 9 ''), then per limit wait, ticket, remaining, reset_after}.
local now = clock(ARGV[1])
local NOW = fmt_now(now)
local holder = ARGV[2]
local receipt_ms = receipt_millis(ARGV[3])
local n = tonumber(ARGV[4])
local p = 5
local limits = {}
for i = 1, n do
  limits[i] = { key = KEYS[i], cost = tonumber(ARGV[p + 5]), cost_text = ARGV[p + 5],
    args = { NOW, ARGV[p], ARGV[p + 1], ARGV[p + 2], ARGV[p + 3], ARGV[p + 4] } }
  p = p + 6
end
local k = n + 1
local bh, br = nil, nil
if ARGV[p] == '1' then
  bh = { key = KEYS[k], name = ARGV[p + 1], max = ARGV[p + 2], lease = ARGV[p + 3] }
  k = k + 1
end
p = p + 4
if ARGV[p] == '1' then
  br = { key = KEYS[k], args = { NOW, ARGV[p + 1], ARGV[p + 2], ARGV[p + 3], ARGV[p + 4],
    ARGV[p + 5], ARGV[p + 6], ARGV[3], holder } }
end
p = p + 7
local counts = {}
for i = 1, n + 2 do
  counts[i] = tonumber(ARGV[p + i - 1])
end
p = p + n + 2
local function take(count)
  local ids = {}
  for i = 1, count do
    ids[i] = ARGV[p]
    p = p + 1
  end
  return ids
end
for i = 1, n do
  limits[i].lost = take(counts[i])
end
local bh_lost = take(counts[n + 1])
local br_lost = take(counts[n + 2])

-- Limits: lost reservations refunded (as limiter_reserve does), then each bucket planned.
local granted, told_no, corrupt = true, false, 0
for _, l in ipairs(limits) do
  local api = bucket_api({ l.key }, l.args)
  local b = api.load(l.key, now)
  api.rebase(b, now)
  for _, id in ipairs(l.lost) do
    local gone = l.key .. ':r:' .. id
    local taken = tonumber(redis.call('GET', gone) or '')
    if taken ~= nil and taken > 0 and b.fa > now then -- _rules.bucket_refund
      local block_floor = b.bu + (api.burst - 1.0) * api.interval
      b.fa = math.max(b.fa - taken * api.interval, now, block_floor)
    end
    redis.call('SET', gone, 'x', 'PX', receipt_ms)
  end
  -- The receipt is written before the decision and taken back on a refusal (finish): one
  -- command for a granted request. NX fails on a cancelled holder's 'x': never granted.
  local receipt = l.key .. ':r:' .. holder
  if redis.call('SET', receipt, l.cost_text, 'PX', receipt_ms, 'NX') then
    l.receipt = receipt
  else
    told_no = true
  end
  local base = now
  if b.fa > now then
    base = b.fa
  end
  l.new_fa = base + l.cost * api.interval
  l.wait = l.new_fa - now - api.span
  if l.wait <= EPSILON then
    l.wait = 0.0
  else
    granted = false
  end
  l.api, l.b = api, b
  corrupt = math.max(corrupt, b.corrupt)
end

local function finish(refused, retry, slot, reached, rep)
  local out -- made at its full size, then filled by index: cheaper than growing it
  if rep then
    out = { refused, fmt(retry), slot, reached, corrupt,
      rep[1], rep[2], rep[3], rep[4], rep[5], rep[6], rep[7], rep[8], rep[9] }
  else
    out = { refused, fmt(retry), slot, reached, corrupt, '', '', '', '', '', '', '', '', '' }
  end
  local o = 14
  for _, l in ipairs(limits) do
    if refused == '' then
      l.b.fa = l.new_fa
    elseif l.receipt then
      redis.call('DEL', l.receipt) -- nothing was taken: a later cancel refunds nothing
    end
    l.api.save(l.key, l.b, now)
    local remaining, reset_after = l.api.describe(l.b.fa - now)
    out[o + 1], out[o + 2] = fmt(l.wait), fmt(l.b.fa)
    out[o + 3], out[o + 4] = fmt(remaining), fmt(reset_after)
    o = o + 4
  end
  return out
end

if told_no or not granted then
  if bh ~= nil and #bh_lost > 0 then -- cancelled all the same, with no holder of our own
    lease_acquire({ bh.key }, { NOW, bh.name, bh.max, bh.lease, '', '0', unpack(bh_lost) })
  end
  if told_no then
    return finish('lost', math.huge, -1, 0, nil)
  end
  local retry = 0.0
  for _, l in ipairs(limits) do
    retry = math.max(retry, l.wait)
  end
  return finish('limit', retry, -1, 0, nil)
end

local slot = -1
if bh ~= nil then
  local r = lease_acquire({ bh.key }, { NOW, bh.name, bh.max, bh.lease, holder, '0',
    unpack(bh_lost) })
  slot = tonumber(r[2])
  if slot < 0 then
    return finish('bulkhead', tonumber(r[1]), -1, 1, nil)
  end
end

if br ~= nil then
  for _, id in ipairs(br_lost) do
    table.insert(br.args, id)
  end
  local rep = breaker_admit({ br.key }, br.args)
  if rep[1] ~= 't' then
    if bh ~= nil then
      redis.call('HDEL', bh.key, 'h:' .. holder) -- the slot goes back: the breaker said no
      local kept = held and held[bh.key]
      if kept then
        kept.leases['h:' .. holder] = nil -- as a later member's read would find it
      end
    end
    return finish('breaker', tonumber(rep[2]), -1, 2, rep)
  end
  return finish('', 0.0, slot, 2, rep)
end
return finish('', 0.0, slot, 2, nil)
