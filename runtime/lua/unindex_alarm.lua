-- unindex_alarm.lua: drop an alarm-index entry, unless someone moved it meanwhile.
--
-- KEYS[1]  alarm index shard
-- ARGV[1]  member ("namespace:id")
-- ARGV[2]  the score this node claimed it at, in ms
--
-- Returns 1 when removed; 0 when the entry is gone or has another score (a newer alarm was
-- set, possibly by another node, and must stay indexed).
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
