-- _rules.breaker_view: the state a call arriving now would find. Records the reading (as
-- the rule's rebase does). Returns {state, failure_count, opened_at, probes, successful,
-- failed, rejected, state_changes, corrupt}.
local key = KEYS[1]
local now = clock(ARGV[1])
local s = load_breaker(key, now)
rebase(s, now)
save_breaker(key, s)
local st = s.st
if st == OPEN and s.iso == 0 and now - s.oa >= RESET_TIMEOUT then
  st = HALF_OPEN
end
return { STATE_NAMES[st], fmt(s.fc), fmt(s.oa), fmt(probe_count(s)), fmt(s.ok), fmt(s.bad),
  fmt(s.rej), fmt(s.chg), s.corrupt }
