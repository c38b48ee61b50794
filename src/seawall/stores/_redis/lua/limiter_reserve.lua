-- _rules.bucket_reserve. ARGV 7 tokens, 8 max_wait.
-- Returns {wait, ticket, remaining, reset_after, corrupt}.
local key = KEYS[1]
local now = clock(ARGV[1])
local tokens = tonumber(ARGV[7])
local max_wait = tonumber(ARGV[8])
local b = load_bucket(key, now)
rebase(b, now)
local base = now
if b.fa > now then
  base = b.fa
end
local new_fa = base + tokens * INTERVAL
local wait = new_fa - now - SPAN
if wait <= EPSILON then
  b.fa = new_fa
  wait = 0.0
elseif wait <= max_wait then
  b.fa = new_fa
end
save_bucket(key, b, now)
local remaining, reset_after = describe(b.fa - now)
return { fmt(wait), fmt(b.fa), fmt(remaining), fmt(reset_after), b.corrupt }
