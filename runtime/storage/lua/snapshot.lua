-- snapshot.lua: everything a replica needs of an object, in one atomic call (no lease: a
-- replica reads what is committed, and never writes).
--
-- KEYS[1]  data hash       (user key -> msgpack value)
-- KEYS[2]  alarm key
-- KEYS[3]  version counter (absent: 0, the object was never committed as replicated)
-- ARGV[1]  the most keys a replica may hold
-- ARGV[2]  the most bytes (keys and values) a replica may hold
--
-- Returns {version, alarm or false, key, value, key, value, ...};
--         {version, alarm or false, -1} when the object is over either bound (the replica
--         is refused and its reads go to the primary).
local version = tonumber(redis.call('GET', KEYS[3]) or '0')
local alarm = redis.call('GET', KEYS[2])
if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[1]) then
  return {version, alarm, -1}
end
local pairs = redis.call('HGETALL', KEYS[1])
local size = 0
for i = 1, #pairs do
  size = size + #pairs[i]
end
if size > tonumber(ARGV[2]) then
  return {version, alarm, -1}
end
local out = {version, alarm}
for i = 1, #pairs do
  out[i + 2] = pairs[i]
end
return out
