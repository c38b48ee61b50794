-- _breaker_core.force. ARGV 8 action: 'open', 'closed' or 'reset' (checked by Python).
local key = KEYS[1]
local now = clock(ARGV[1])
local action = ARGV[8]
local s = load_breaker(key, now)
rebase(s, now)
local tr = nil
if action == 'open' then
  if s.st ~= OPEN then
    tr = move(s, 'forced_open', now)
  end
  s.iso = 1
else
  if s.st == CLOSED then
    s.fc = 0
    s.gen = s.gen + 1 -- outcomes of calls admitted before the reset no longer count
  else
    tr = move(s, 'reset', now)
  end
  if action == 'closed' then
    s.dis = 1
  else
    s.dis = 0
  end
end
save_breaker(key, s)
-- Every force leaves the window empty: a reset while closed clears it (_breaker_core.force),
-- and a breaker that is not closed keeps none (_breaker_core._move emptied it).
redis.call('HDEL', key, 'w', 'wf', 'ws', 'bk')
return reply('', '', '', tr, s)
