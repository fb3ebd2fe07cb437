-- renew.lua: extend a lease the caller holds.
--
-- KEYS[1]  lease key
-- KEYS[2]  epoch key
-- ARGV[1]  lease value the caller holds ("holder:epoch")
-- ARGV[2]  ttl in milliseconds
-- ARGV[3]  the caller's epoch
--
-- Returns 1 when renewed;
--         2 when the lease had expired but nobody took it since (the epoch counter still
--           equals the caller's epoch), so it is set again and the caller keeps its instance;
--         0 when the lease is lost: the caller must discard its instance.
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not current and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
