-- tell.lua: a message from an object's primary to its replicas, not stored (presence, say).
--
-- KEYS[1]  the object's channel for such messages (not a key: it shares the object's hash
--          tag, so the call goes to the object's slot)
-- ARGV[1]  the message
--
-- Returns how many connections heard it (each node holding a replica has one).
return redis.call('PUBLISH', KEYS[1], ARGV[1])
