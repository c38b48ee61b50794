-- Several requests' admissions in one call: each decided in order exactly as admit.lua
-- decides one (admit_one is that script's text as a function), with its own holder id and
-- lost ids, so a later member sees what an earlier one took.
-- KEYS: every member's keys, member after member. ARGV: 1 m (members), then per member its
-- key count and its argument count, then every member's arguments (admit.lua's), in order.
-- Returns per member: the length of its reply, then its reply (see admit.lua).
local m = tonumber(ARGV[1])
local kp, ap = 0, 1 + 2 * m
local out = {}
for i = 1, m do
  local nk, na = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local keys, args = {}, {}
  for j = 1, nk do
    keys[j] = KEYS[kp + j]
  end
  for j = 1, na do
    args[j] = ARGV[ap + j]
  end
  kp, ap = kp + nk, ap + na
  local rep = admit_one(keys, args)
  out[#out + 1] = #rep
  for _, x in ipairs(rep) do
    out[#out + 1] = x
  end
end
return out
