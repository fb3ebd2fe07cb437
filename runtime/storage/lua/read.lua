-- read.lua: read some keys (and optionally the alarm) of an object the caller owns.
--
-- KEYS[1]  lease key
-- KEYS[2]  data hash
-- KEYS[3]  alarm key
-- ARGV[1]  lease value the reader holds ("holder:epoch")
-- ARGV[2]  "1" to return the alarm too, else "0"
-- ARGV[3 ..]  the keys to read (may be none)
--
-- Returns {1, alarm or false, value or false, ...} in the order of the keys asked for;
--         {0} when the caller no longer holds the lease (a zombie must not read).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0}
end
local alarm = false
if ARGV[2] == '1' then
  alarm = redis.call('GET', KEYS[3])
end
local out = {1, alarm}
if #ARGV > 2 then
  local values = redis.call('HMGET', KEYS[2], unpack(ARGV, 3))
  for i = 1, #values do
    out[i + 2] = values[i]
  end
end
return out
