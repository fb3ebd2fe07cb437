-- settle_alarm.lua: after delivering an alarm, point its index entry at what is left.
--
-- KEYS[1]  alarm index shard (zset: "namespace:id" -> due time in ms)
-- ARGV[1]  member ("namespace:id")
-- ARGV[2]  the score this node claimed it at, in ms
-- ARGV[3]  the object's alarm due time in ms now, or "" when it has none
--
-- Returns 1 when the entry was removed or re-pointed; 0 when it had moved since the claim
-- (a newer alarm was indexed meanwhile, possibly by another node) and was left alone.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
  return 0
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
