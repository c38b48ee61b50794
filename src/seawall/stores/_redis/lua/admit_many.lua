-- Several requests' admissions in one call: each decided in order exactly as admit.lua
-- decides one (admit_one is that script's text as a function), with its own holder id and
-- lost ids, so a later member sees what an earlier one took.
-- What does not change between the members of one set of gates is sent once, as a template:
-- admit.lua's ARGV with the member's own items left blank. A key several members use (one
-- client's bucket) is sent once.
-- KEYS: the members' keys, each once. ARGV: 1 the templates, 2 the members, each a JSON
-- array: per template its items; per member its template's number, its key count, the count
-- of its own items, its keys' places in KEYS, then its own items: holder id, per limit (key,
-- keyed, cost), then the n + 2 counts of lost ids and the ids (see admit.lua).
-- (JSON, not one argument per item: encoding each argument was most of the client's cost
-- of a batch; cjson decodes them in C.)
-- Returns one JSON array of strings: per member the length of its reply, then its reply (see
-- admit.lua), each item as Redis would have sent it (a number as its integer part).
hold_records()
local templates = cjson.decode(ARGV[1])
local own = cjson.decode(ARGV[2])
local p, total = 1, #own
-- Tables are made at their full size and filled by index: growing one an item at a time
-- (or finding its end with #) was most of a member's cost outside the decision itself.
local out, o = {}, 0
while p <= total do
  local tp = templates[own[p]]
  local nk, na = own[p + 1], own[p + 2]
  p = p + 3
  local keys = {}
  for j = 1, nk do
    keys[j] = KEYS[own[p + j - 1]]
  end
  p = p + nk
  local args = { unpack(tp) }
  args[2] = own[p]
  local n = tonumber(tp[4])
  for l = 0, n - 1 do
    local at, mine = 5 + 6 * l, p + 1 + 3 * l
    args[at + 3], args[at + 4], args[at + 5] = own[mine], own[mine + 1], own[mine + 2]
  end
  local a = #tp
  for j = p + 1 + 3 * n, p + na - 1 do
    a = a + 1
    args[a] = own[j]
  end
  p = p + na
  local rep = admit_one(keys, args)
  local m = #rep
  o = o + 1
  out[o] = string.format('%d', m)
  for j = 1, m do
    local x = rep[j]
    if type(x) == 'number' then
      x = string.format('%d', x) -- as Redis replies a number: its integer part
    end
    out[o + j] = x
  end
  o = o + m
end
write_held()
return cjson.encode(out)
