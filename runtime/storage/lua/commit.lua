-- commit.lua: apply one coalesced batch of an object's writes, only if its lease still holds.
--
-- KEYS[1]  lease key
-- KEYS[2]  data hash       (user key -> msgpack value)
-- KEYS[3]  key index zset  (every user key with score 0, for ordered range reads)
-- KEYS[4]  alarm key       (msgpack [time_ms, retry_count])
-- KEYS[5]  (replicated classes only) the version counter, only ever incremented
-- KEYS[6]  (replicated classes only) the channel replicas listen on (not a key: it is
--          passed here because it shares the object's hash tag, so the call stays in one slot)
-- ARGV[1]  lease value the writer holds ("holder:epoch"): the fencing check
-- ARGV[2]  "1" to delete every key (and the alarm) before applying the rest, else "0"
-- ARGV[3]  alarm: "" leaves it, "-" deletes it, anything else is the new alarm value
-- ARGV[4]  n, the number of puts
-- ARGV[5 .. 4+2n]   key, value pairs to put
-- ARGV[5+2n .. #ARGV]  keys to delete
--
-- Returns 0 when fenced, in which case nothing at all was written (nor published).
-- Otherwise 1; or, for a replicated class (six KEYS), the object's new version (>= 1), after
-- publishing msgpack [version, time_ms, delete_all, alarm, {k, v, ...}, {deleted, ...}] on
-- KEYS[6]. Redis sends that message to subscribers after this loop turn's AOF write (and
-- fsync, with appendfsync always), as it does the reply: docs/replicas.md.
-- The caller validates every argument first, so no command below can fail half-way.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
end
if ARGV[3] == '-' then
  redis.call('DEL', KEYS[4])
elseif ARGV[3] ~= '' then
  redis.call('SET', KEYS[4], ARGV[3])
end
local n = tonumber(ARGV[4])
for i = 5, 4 + 2 * n, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[3], 0, ARGV[i])
end
for i = 5 + 2 * n, #ARGV do
  redis.call('HDEL', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[3], ARGV[i])
end
if #KEYS < 6 then
  return 1
end
local version = redis.call('INCR', KEYS[5])
local now = redis.call('TIME')
local puts = {}
for i = 5, 4 + 2 * n do
  puts[#puts + 1] = ARGV[i]
end
local deletes = {}
for i = 5 + 2 * n, #ARGV do
  deletes[#deletes + 1] = ARGV[i]
end
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('PUBLISH', KEYS[6], cmsgpack.pack({version, ms, ARGV[2], ARGV[3], puts, deletes}))
return version
