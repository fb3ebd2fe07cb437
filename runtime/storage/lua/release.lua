-- release.lua: give a lease back at once, so the next request needs no TTL wait.
--
-- KEYS[1]  lease key
-- KEYS[2]  epoch key
-- ARGV[1]  lease value the caller holds ("holder:epoch")
--
-- Returns 1 when released, 0 when the caller did not hold it (nothing changed).
-- The epoch moves on too, so a renewal already on its way cannot revive the lease.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
