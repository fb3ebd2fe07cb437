-- list.lua: a range of an object's keys, in key (byte) order, with their values.
--
-- KEYS[1]  lease key
-- KEYS[2]  data hash
-- KEYS[3]  key index zset
-- ARGV[1]  lease value the reader holds ("holder:epoch")
-- ARGV[2]  lower bound as a ZRANGEBYLEX bound: "-", "[key" (inclusive) or "(key" (exclusive)
-- ARGV[3]  upper bound likewise: "+", "[key" or "(key"
-- ARGV[4]  "1" for descending order, else "0"
-- ARGV[5]  the most entries to return
--
-- Returns {1, key1, value1, key2, value2, ...}; {0} when the lease is not held.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0}
end
local keys
if ARGV[4] == '1' then
  keys = redis.call('ZREVRANGEBYLEX', KEYS[3], ARGV[3], ARGV[2], 'LIMIT', 0, ARGV[5])
else
  keys = redis.call('ZRANGEBYLEX', KEYS[3], ARGV[2], ARGV[3], 'LIMIT', 0, ARGV[5])
end
local out = {1}
if #keys == 0 then
  return out
end
local values = redis.call('HMGET', KEYS[2], unpack(keys))
for i = 1, #keys do
  out[2 * i] = keys[i]
  out[2 * i + 1] = values[i]
end
return out
