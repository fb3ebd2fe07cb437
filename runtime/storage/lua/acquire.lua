-- acquire.lua: take an object's lease if it is free (or still ours from before), with a new epoch.
--
-- KEYS[1]  lease key   (string "holder:epoch", with a TTL)
-- KEYS[2]  epoch key   (integer counter that only grows: the fencing token)
-- ARGV[1]  holder      ("node@incarnation" of the caller)
-- ARGV[2]  ttl         lease time to live in milliseconds
--
-- Returns {1, epoch} when the caller now holds the lease with that new epoch,
--         {0, current, pttl} when another holder has it ("holder:epoch" of that holder, and
--           the milliseconds its lease has left: a node that routes to that holder trusts
--           it no longer than that).
--
-- A lease still held by the same holder belongs to an instance this very process discarded
-- (after a failed commit), so taking it over with a fresh epoch is safe and fences the old one.
local current = redis.call('GET', KEYS[1])
if current then
  local holder = string.match(current, '^(.*):%d+$')
  if holder ~= ARGV[1] then
    return {0, current, redis.call('PTTL', KEYS[1])}
  end
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
return {1, epoch}
