-- claim_alarms.lua: take the due entries of one alarm-index shard for this node to deliver.
--
-- KEYS[1]  alarm index shard (zset: "namespace:id" -> due time in ms)
-- ARGV[1]  now, in ms since the epoch
-- ARGV[2]  claim-until time in ms: claimed entries are pushed there, so another node only
--          retries them if this one dies before finishing (alarms are at-least-once)
-- ARGV[3]  the most entries to claim
--
-- Returns the claimed members (possibly none).
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for i = 1, #due do
  redis.call('ZADD', KEYS[1], ARGV[2], due[i])
end
return due
