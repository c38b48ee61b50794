-- What admitted requests report once they are done, for a batch of them in one call: each
-- gives its bulkhead lease back (HDEL, as a release does) and records its breaker outcome
-- (breaker_record's own code, called as a function; see scripts.py).
-- KEYS: the bulkhead's lease hash if any, then the breaker's hash if any (one hash slot).
-- ARGV: 1 now, 2 has bulkhead ('1'/'0'), 3 has breaker, 4..9 the breaker prelude's ARGV 2..7
-- (name, max_failures, reset_timeout, half_open_max_calls, success_threshold,
-- stale_attempt_timeout), 10 n items, 11 the items as one JSON array of strings: per item its
-- holder id ('' for none), m, and the m arguments breaker_record takes from its ARGV 8 on (none
-- when m is 0). (One argument, not one per item: encoding each was most of the client's cost.)
-- Returns one JSON array of strings: per item, the breaker's 9-item reply (or 9 ''), each item
-- as Redis would have sent it (a number as its integer part).
local now = clock(ARGV[1])
local NOW = fmt_now(now)
local k = 1
local bh, br = nil, nil
if ARGV[2] == '1' then
  bh = KEYS[k]
  k = k + 1
end
if ARGV[3] == '1' then
  br = KEYS[k]
end
hold_records()
local items = cjson.decode(ARGV[11])
local out = {}
local p = 1
for _ = 1, tonumber(ARGV[10]) do
  local holder, m = items[p], tonumber(items[p + 1])
  p = p + 2
  if bh ~= nil and holder ~= '' then
    redis.call('HDEL', bh, 'h:' .. holder)
  end
  local rep = nil
  if br ~= nil and m > 0 then
    local args = { NOW, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9] }
    for i = 0, m - 1 do
      table.insert(args, items[p + i])
    end
    rep = breaker_record({ br }, args)
  end
  p = p + m
  for i = 1, 9 do
    table.insert(out, rep and rep[i] or '')
  end
end
write_held()
for i, x in ipairs(out) do
  if type(x) == 'number' then
    out[i] = string.format('%d', x) -- as Redis replies a number: its integer part
  end
end
return cjson.encode(out)
