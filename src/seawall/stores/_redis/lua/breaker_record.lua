-- _breaker_core.record. ARGV 8 generation, 9 probe_id, 10 outcome. Returns reply('', ...).
local key = KEYS[1]
local now = clock(ARGV[1])
local gen = tonumber(ARGV[8])
local probe_id = tonumber(ARGV[9])
local outcome = tonumber(ARGV[10])
local s = load_breaker(key, now)
rebase(s, now)

local function record()
  if outcome == SUCCESS then
    s.ok = s.ok + 1
  elseif outcome == FAILURE then
    s.bad = s.bad + 1
  else
    s.neu = s.neu + 1
  end
  if gen ~= s.gen then
    return nil -- admitted in another era: counted, ignored by the machine
  end
  if probe_id ~= 0 then
    if s.probes[probe_id] == nil then
      return nil -- its lease ran out and the slot went to another probe
    end
    s.probes[probe_id] = nil
    if outcome == FAILURE then
      s.fc = s.fc + 1
      return move(s, 'probe_failed', now)
    end
    if outcome == SUCCESS then
      s.sc = s.sc + 1
      if s.sc >= SUCCESS_THRESHOLD then
        return move(s, 'probes_succeeded', now)
      end
    end
    return nil
  end
  if s.st ~= CLOSED or outcome == NEUTRAL then
    return nil
  end
  if outcome == SUCCESS then
    s.fc = 0
  else
    s.fc = s.fc + 1
  end
  if s.dis == 1 then
    return nil
  end
  if s.fc >= MAX_FAILURES then
    return move(s, 'tripped', now)
  end
  return nil
end

local tr = record()
save_breaker(key, s)
return reply('', '', '', tr, s)
