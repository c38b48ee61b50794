-- _rules.bucket_withdraw: a shared retry budget's one step. ARGV 7 deposit (tokens, may be
-- fractional). The deposit goes in first, never past full (_rules.bucket_refund); then one
-- token is taken if it is there now. Returns {wait, ticket, remaining, reset_after, corrupt}:
-- the token was taken exactly when wait is 0.
local key = KEYS[1]
local now = clock(ARGV[1])
local deposit = tonumber(ARGV[7])
local b = load_bucket(key, now)
rebase(b, now)
if deposit > 0 and b.fa > now then
  local block_floor = b.bu + (BURST - 1.0) * INTERVAL
  b.fa = math.max(b.fa - deposit * INTERVAL, now, block_floor)
end
local base = now
if b.fa > now then
  base = b.fa
end
local new_fa = base + INTERVAL
local wait = new_fa - now - SPAN
if wait <= EPSILON then
  wait = 0.0
  b.fa = new_fa
end
save_bucket(key, b, now)
local remaining, reset_after = describe(b.fa - now)
return { fmt(wait), fmt(b.fa), fmt(remaining), fmt(reset_after), b.corrupt }
