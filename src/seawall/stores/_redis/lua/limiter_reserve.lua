-- _rules.bucket_reserve_held. ARGV 7 tokens, 8 max_wait, 9 receipt lifetime (seconds),
-- 10 holder id ('' for none), then holders whose answer was lost (their tokens come back).
-- A receipt is the key KEYS[1]..':r:'..holder (same hash slot): the tokens a committed
-- reservation took, or 'x' once its holder was cancelled. Redis expires it.
-- Returns {wait, ticket, remaining, reset_after, corrupt}.
local key = KEYS[1]
local now = clock(ARGV[1])
local tokens = tonumber(ARGV[7])
local max_wait = tonumber(ARGV[8])
local receipt_ms = receipt_millis(ARGV[9])
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
local base = now
if b.fa > now then
  base = b.fa
end
local new_fa = base + tokens * INTERVAL
local wait = new_fa - now - SPAN
local commit = wait <= EPSILON or wait <= max_wait
if wait <= EPSILON then
  wait = 0.0
end
if commit and holder ~= '' then
  -- The receipt; NX: a holder cancelled already (told no) is never granted.
  local receipt = key .. ':r:' .. holder
  if not redis.call('SET', receipt, string.format('%d', tokens), 'PX', receipt_ms, 'NX') then
    commit = false
    wait = math.huge
  end
end
if commit then
  b.fa = new_fa
end
save_bucket(key, b, now)
local remaining, reset_after = describe(b.fa - now)
return { fmt(wait), fmt(b.fa), fmt(remaining), fmt(reset_after), b.corrupt }
