-- _rules.bucket_reserve_held. ARGV 7 tokens, 8 max_wait, 9 receipt lifetime (seconds),
-- 10 holder id ('' for none), then holders whose answer was lost (their tokens come back).
-- A receipt is the key KEYS[1]..':r:'..holder (same hash slot): the tokens a committed
-- reservation took, or 'x' once its holder was cancelled. Redis expires it.
-- Returns {wait, ticket, remaining, reset_after, corrupt}.
local key = KEYS[1]
local now = clock(ARGV[1])
local tokens = tonumber(ARGV[7])
local max_wait = tonumber(ARGV[8])
local receipt_ms = string.format('%d', math.max(1, math.ceil(tonumber(ARGV[9]) * 1000)))
local holder = ARGV[10]
local b = load_bucket(key, now)
rebase(b, now)
for i = 11, #ARGV do
  local gone = key .. ':r:' .. ARGV[i]
  local taken = tonumber(redis.call('GET', gone) or '')
  if taken ~= nil and taken > 0 and b.fa > now then -- _rules.bucket_refund
    local block_floor = b.bu + (BURST - 1.0) * INTERVAL
    b.fa = math.max(b.fa - taken * INTERVAL, now, block_floor)
  end
  redis.call('SET', gone, 'x', 'PX', receipt_ms)
end
local receipt = key .. ':r:' .. holder
if holder ~= '' and redis.call('GET', receipt) == 'x' then
  -- told no already (its answer was lost and cancelled): never granted
  save_bucket(key, b, now)
  local remaining, reset_after = describe(b.fa - now)
  return { fmt(math.huge), fmt(b.fa), fmt(remaining), fmt(reset_after), b.corrupt }
end
local base = now
if b.fa > now then
  base = b.fa
end
local new_fa = base + tokens * INTERVAL
local wait = new_fa - now - SPAN
local committed = false
if wait <= EPSILON then
  b.fa = new_fa
  wait = 0.0
  committed = true
elseif wait <= max_wait then
  b.fa = new_fa
  committed = true
end
save_bucket(key, b, now)
if committed and holder ~= '' then
  redis.call('SET', receipt, string.format('%d', tokens), 'PX', receipt_ms)
end
local remaining, reset_after = describe(b.fa - now)
return { fmt(wait), fmt(b.fa), fmt(remaining), fmt(reset_after), b.corrupt }
