"""FailureCounters (auth_api.limits) that every auth API replica shares, in Redis."""


# One round trip, atomic per key: the same arithmetic as limits._next_state and LockoutPolicy.lock_seconds.
_CHARGE = """
local state = redis.call('HMGET', KEYS[1], 'failures', 'last', 'until')
local now = tonumber(ARGV[1])
local threshold, base, max, forget = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local failures, last, locked = tonumber(state[1]) or 0, tonumber(state[2]) or now, tonumber(state[3]) or 0
if locked > now then
  return locked - now
end
if now - last >= forget then
  failures = 0
end
failures = failures + 1
local lock = 0
if threshold > 0 and failures >= threshold then
  lock = math.min(max, base * 2 ^ math.min(failures - threshold, 32))
end
local deadline = 0
if lock > 0 then
  deadline = now + lock
end
redis.call('HSET', KEYS[1], 'failures', failures, 'last', now, 'until', deadline)
redis.call('EXPIRE', KEYS[1], math.max(forget, lock))
return 0
"""


class RedisFailureCounters:
    """FailureCounters in Redis hashes that expire a day (forget_after_seconds) after the last failure."""

    prefix = "jwtgate:login-failures:"

    def __init__(self, client):
        self._client = client
        self._charge = client.register_script(_CHARGE)

    def charge(self, key, now, policy):
        return int(self._charge(keys=[self.prefix + key], args=[
            now, policy.threshold, policy.base_seconds, policy.max_seconds, policy.forget_after_seconds]))

    def clear(self, key):
        self._client.delete(self.prefix + key)

    def failures(self, key):
        value = self._client.hget(self.prefix + key, "failures")
        return int(value) if value is not None else 0
