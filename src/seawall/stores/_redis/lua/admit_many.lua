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
local p = 1
local out = {}
while p <= #own do
  local tp = templates[own[p]]
  local nk, na = own[p + 1], own[p + 2]
  p = p + 3
  local keys, args = {}, {}
  for j = 1, nk do
    keys[j] = KEYS[own[p + j - 1]]
  end
  p = p + nk
  for j = 1, #tp do
    args[j] = tp[j]
  end
  args[2] = own[p]
  local n = tonumber(tp[4])
  for l = 0, n - 1 do
    local at, mine = 5 + 6 * l, p + 1 + 3 * l
    args[at + 3], args[at + 4], args[at + 5] = own[mine], own[mine + 1], own[mine + 2]
  end
  for j = p + 1 + 3 * n, p + na - 1 do
    args[#args + 1] = own[j]
  end
  p = p + na
  local rep = admit_one(keys, args)
  out[#out + 1] = string.format('%d', #rep)
  for _, x in ipairs(rep) do
    if type(x) == 'number' then
      x = string.format('%d', x) -- as Redis replies a number: its integer part
    end
    out[#out + 1] = x
  end
end
write_held()
return cjson.encode(out)
