-- _rules.bucket_peek. Returns {tokens, seconds until full, corrupt}. An absent bucket is
-- not created (it is full); an existing one records the reading, as the rule does.
local key = KEYS[1]
local now = clock(ARGV[1])
local b = load_bucket(key, now)
rebase(b, now)
if b.exists then
  save_bucket(key, b, now)
end
local ahead = b.fa - now
local taken = 0.0
if ahead > 0 then
  taken = ahead / INTERVAL
end
return { fmt(BURST - taken), fmt(math.max(0.0, b.fa - now)), b.corrupt }
