-- _rules.bucket_block. ARGV 7 seconds, 8 max_block. Returns {1 if blocked else 0, corrupt}.
local key = KEYS[1]
local now = clock(ARGV[1])
local seconds = tonumber(ARGV[7])
local max_block = tonumber(ARGV[8])
local b = load_bucket(key, now)
rebase(b, now)
local till = now + math.min(seconds, max_block)
local done = 0
if not (till <= b.bu or till <= now) then
  b.bu = till
  b.fa = math.max(b.fa, till + (BURST - 1.0) * INTERVAL)
  done = 1
end
save_bucket(key, b, now)
return { done, b.corrupt }
