-- How many leases have not ended at now (bulkhead holders). Changes nothing.
local now = clock(ARGV[1])
local count = 0
for _, l in pairs(load_leases(KEYS[1])) do
  if l.ends > now then
    count = count + 1
  end
end
return count
