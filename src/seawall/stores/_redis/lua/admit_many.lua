-- Several requests' admissions in one call: each decided in order exactly as admit.lua
-- decides one (admit_one is that script's text as a function), with its own holder id and
-- lost ids, so a later member sees what an earlier one took.
-- What does not change between the members of one set of gates is sent once, as a template:
-- admit.lua's ARGV with the member's own items left blank (building and encoding them per
-- member was most of the client's cost of a batch).
-- KEYS: every member's keys, member after member. ARGV: 1 m (members), 2 t (templates); per
-- template its length then its items; per member its template's number, its key count, the
-- count of its own items, then those: holder id, per limit (key, keyed, cost), then the
-- n + 2 counts of lost ids and the ids (see admit.lua).
-- Returns per member: the length of its reply, then its reply (see admit.lua).
local m, t = tonumber(ARGV[1]), tonumber(ARGV[2])
local p = 3
local templates = {}
for i = 1, t do
  local len = tonumber(ARGV[p])
  local items = {}
  for j = 1, len do
    items[j] = ARGV[p + j]
  end
  templates[i] = items
  p = p + len + 1
end
local kp = 0
local out = {}
for _ = 1, m do
  local tp = templates[tonumber(ARGV[p])]
  local nk, na = tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])
  p = p + 3
  local keys, args = {}, {}
  for j = 1, nk do
    keys[j] = KEYS[kp + j]
  end
  kp = kp + nk
  for j = 1, #tp do
    args[j] = tp[j]
  end
  args[2] = ARGV[p]
  local n = tonumber(tp[4])
  for l = 0, n - 1 do
    local at, own = 5 + 6 * l, p + 1 + 3 * l
    args[at + 3], args[at + 4], args[at + 5] = ARGV[own], ARGV[own + 1], ARGV[own + 2]
  end
  for j = p + 1 + 3 * n, p + na - 1 do
    args[#args + 1] = ARGV[j]
  end
  p = p + na
  local rep = admit_one(keys, args)
  out[#out + 1] = #rep
  for _, x in ipairs(rep) do
    out[#out + 1] = x
  end
end
return out
