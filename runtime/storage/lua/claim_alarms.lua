-- claim_alarms.lua: take the due entries of one alarm-index shard for this node to deliver.
--
-- KEYS[1]  alarm index shard (zset: "namespace:id" -> due time in ms)
-- ARGV[1]  now, in ms since the epoch
-- ARGV[2]  claim-until time in ms: claimed entries are pushed there, so another node only
--          retries them if this one dies before finishing (alarms are at-least-once)
-- ARGV[3]  the most entries to claim
-- ARGV[4 ..]  the namespaces this node serves: entries of other namespaces are left for
--             the nodes that serve them
--
-- Returns {claimed members (possibly none), how many entries of the shard were due before
-- claiming (every namespace: what waits to be delivered, for the metrics)}.
local served = {}
for i = 4, #ARGV do
  served[ARGV[i]] = true
end
local limit = tonumber(ARGV[3])
local waiting = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 10 * limit)
local claimed = {}
for i = 1, #due do
  local namespace = string.match(due[i], '^([^:]*):')
  if namespace and served[namespace] then
    redis.call('ZADD', KEYS[1], ARGV[2], due[i])
    claimed[#claimed + 1] = due[i]
    if #claimed >= limit then
      break
    end
  end
end
return {claimed, waiting}
