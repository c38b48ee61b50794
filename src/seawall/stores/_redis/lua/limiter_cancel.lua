-- _rules.bucket_cancel (reads no clock but for the expiry). ARGV 7 ticket, 8 tokens.
-- Returns {1 if given back else 0, corrupt}.
local key = KEYS[1]
local now = clock(ARGV[1])
local ticket = tonumber(ARGV[7])
local tokens = tonumber(ARGV[8])
local b = load_bucket(key, now)
if b.fa ~= ticket then
  if b.corrupt == 1 then
    save_bucket(key, b, now)
  end
  return { 0, b.corrupt }
end
-- Never below a block's floor: the tokens go back, the block stays.
local block_floor = b.bu + (BURST - 1.0) * INTERVAL
b.fa = math.max(ticket - tokens * INTERVAL, block_floor)
save_bucket(key, b, now)
return { 1, b.corrupt }
