"""The Redis pool's one Lua script: every decision on shared state, atomic and on one clock.

Redis runs a script alone, so checking a key's limits and granting a slot cannot
interleave between replicas, and ``TIME`` inside the script is the one clock every
replica shares. ``ARGV[1]`` is the key prefix, ``ARGV[2]`` the operation, ``ARGV[3]``
the epoch the caller knows (see below); the rest depends on the operation.

Per key ``{P}:lease:{provider}:{name}`` (sorted set: fencing token → expiry, ms) and
``…:owner:…`` (token → replica) hold the running leases; ``…:rpm:…`` (token → grant
time) and ``…:tpm:…`` / ``…:tpmv:…`` / ``…:tpms:…`` (token → grant time, token → tokens,
their sum) the sliding windows, kept ``hold`` ms (window + margin). ``{P}:health:{p}``
and ``{P}:cool:{p}`` (hashes by key name) hold ill health and cool-downs. The fair
queue of a provider is ``{P}:q:{p}`` (waiter → tier·10¹⁵ + arrival), each waiter a hash
``{P}:w:{id}`` carrying its candidate keys with their limits; ``{P}:served:{p}`` (user →
the sequence number of their last grant) orders users round-robin within a tier.
``{P}:alive:{replica}`` expires unless its replica beats: a lease or waiter whose replica
is silent is reclaimed by the next decision on its key.

A fencing token is ``epoch:sequence``. A lease gone from its set (expired, reclaimed) can
no longer be released, renewed or charged: those operations answer 0. The epoch marks one
life of the Redis data: when a replica that knew an epoch finds none, Redis lost its state
(a restart without persistence), and the script holds grants on limited keys for a window
(``calm``: RPM/TPM counted before the loss are unknown) and for one heartbeat (``calml``:
replicas re-register their running leases first).
"""

LUA = r"""
local P = ARGV[1]
local op = ARGV[2]
local known = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function k(...) return P .. ':' .. table.concat({...}, ':') end

local function bulk(cmd, key, list)
  for i = 1, #list, 500 do
    redis.call(cmd, key, unpack(list, i, math.min(i + 499, #list)))
  end
end

local function epoch(hold, hb)
  local e = redis.call('GET', k('epoch'))
  if not e then
    e = t[1] .. '.' .. t[2]
    redis.call('SET', k('epoch'), e)
    if known ~= '' then
      redis.call('SET', k('calm'), now + hold)
      redis.call('SET', k('calml'), now + hb)
    end
  end
  return e
end

local alive_cache = {}
local function alive(replica)
  local a = alive_cache[replica]
  if a == nil then
    a = redis.call('EXISTS', k('alive', replica)) == 1
    alive_cache[replica] = a
  end
  return a
end

-- a key's spec: name, concurrency, rpm, tpm, priority (-1: no limit)
local function parse(cands)
  local out = {}
  for item in string.gmatch(cands, '[^;]+') do
    local f = {}
    for v in string.gmatch(item, '[^,]+') do f[#f + 1] = v end
    out[#out + 1] = {name = f[1], conc = tonumber(f[2]), rpm = tonumber(f[3]),
                     tpm = tonumber(f[4]), prio = tonumber(f[5])}
  end
  return out
end

local pruned = {}
local function prune(p, n, hold)
  local id = p .. ':' .. n
  if pruned[id] then return end
  pruned[id] = true
  redis.call('ZREMRANGEBYSCORE', k('rpm', p, n), '-inf', now - hold)
  local old = redis.call('ZRANGEBYSCORE', k('tpm', p, n), '-inf', now - hold)
  if #old > 0 then
    local vals = redis.call('HMGET', k('tpmv', p, n), unpack(old, 1, math.min(#old, 500)))
    local sum = 0
    for _, v in ipairs(vals) do sum = sum + (tonumber(v) or 0) end
    local rest = {}
    for i = 501, #old do rest[#rest + 1] = old[i] end
    if #rest > 0 then
      vals = redis.call('HMGET', k('tpmv', p, n), unpack(rest))
      for _, v in ipairs(vals) do sum = sum + (tonumber(v) or 0) end
    end
    bulk('HDEL', k('tpmv', p, n), old)
    bulk('ZREM', k('tpm', p, n), old)
    redis.call('DECRBY', k('tpms', p, n), sum)
  end
  local lk, ok = k('lease', p, n), k('owner', p, n)
  local gone = redis.call('ZRANGEBYSCORE', lk, '-inf', now)
  local members = redis.call('ZRANGE', lk, 0, -1)
  if #members > 0 then
    local owners = redis.call('HMGET', ok, unpack(members))
    for i, m in ipairs(members) do
      if owners[i] and not alive(owners[i]) then gone[#gone + 1] = m end
    end
  end
  if #gone > 0 then
    bulk('ZREM', lk, gone)
    bulk('HDEL', ok, gone)
  end
end

local function calm_until(spec)
  local until_ = 0
  if spec.rpm >= 0 or spec.tpm >= 0 then
    until_ = tonumber(redis.call('GET', k('calm')) or '0')
  end
  if spec.conc >= 0 then
    until_ = math.max(until_, tonumber(redis.call('GET', k('calml')) or '0'))
  end
  return until_
end

-- whether a key fits a call of `tokens` now, and its headroom (nil: it does not fit)
local function fits(p, spec, tokens, hold)
  local n = spec.name
  if redis.call('HEXISTS', k('health', p), n) == 1 then return nil end
  local cool = tonumber(redis.call('HGET', k('cool', p), n) or '0')
  if cool > now then return nil end
  if calm_until(spec) > now then return nil end
  prune(p, n, hold)
  local room = 1.0
  if spec.conc >= 0 then
    local active = redis.call('ZCARD', k('lease', p, n))
    if active >= spec.conc then return nil end
    if spec.conc > 0 then room = math.min(room, 1 - active / spec.conc) end
  end
  if spec.rpm >= 0 then
    local used = redis.call('ZCARD', k('rpm', p, n))
    if used >= spec.rpm then return nil end
    if spec.rpm > 0 then room = math.min(room, 1 - used / spec.rpm) end
  end
  if spec.tpm >= 0 then
    local sum = tonumber(redis.call('GET', k('tpms', p, n)) or '0')
    -- a call bigger than the whole budget may still run alone in an empty window
    if sum > 0 and sum + tokens > spec.tpm then return nil end
    if spec.tpm > 0 then room = math.min(room, 1 - sum / spec.tpm) end
  end
  return room
end

-- when a key may fit again by the clock alone (nil: not by the clock)
local function opening(p, spec, hold)
  local n = spec.name
  if redis.call('HEXISTS', k('health', p), n) == 1 then return nil end
  local at = math.max(now, tonumber(redis.call('HGET', k('cool', p), n) or '0'), calm_until(spec))
  if spec.rpm >= 0 then
    local first = redis.call('ZRANGE', k('rpm', p, n), 0, 0, 'WITHSCORES')
    if first[2] and redis.call('ZCARD', k('rpm', p, n)) >= spec.rpm then
      at = math.max(at, tonumber(first[2]) + hold)
    end
  end
  if spec.tpm >= 0 then
    local first = redis.call('ZRANGE', k('tpm', p, n), 0, 0, 'WITHSCORES')
    if first[2] then at = math.max(at, tonumber(first[2]) + hold) end
  end
  if spec.conc >= 0 then
    local first = redis.call('ZRANGE', k('lease', p, n), 0, 0, 'WITHSCORES')
    if first[2] and redis.call('ZCARD', k('lease', p, n)) >= spec.conc then
      at = math.max(at, tonumber(first[2]))
    end
  end
  return at
end

local function grant(p, spec, wid, w, e)
  local n = spec.name
  local seq = redis.call('INCR', k('seq'))
  local fence = e .. ':' .. seq
  redis.call('ZADD', k('lease', p, n), now + tonumber(w.ttl), fence)
  redis.call('HSET', k('owner', p, n), fence, w.replica)
  if spec.rpm >= 0 then redis.call('ZADD', k('rpm', p, n), now, fence) end
  local tokens = tonumber(w.tokens)
  if spec.tpm >= 0 and tokens > 0 then
    redis.call('ZADD', k('tpm', p, n), now, fence)
    redis.call('HSET', k('tpmv', p, n), fence, tokens)
    redis.call('INCRBY', k('tpms', p, n), tokens)
  end
  redis.call('HINCRBY', k('granted', p), n, 1)
  redis.call('HSET', k('served', p), w.user, seq)
  redis.call('ZREM', k('q', p), wid)
  redis.call('HSET', k('w', wid), 'fence', fence, 'key', n, 'at', now)
  return fence
end

-- grant what can be granted: lowest tier first, least recently served user first
local function dispatch(p, hold)
  local wids = redis.call('ZRANGE', k('q', p), 0, 199)
  local tiers, order, waiters, pos = {}, {}, {}, {}
  for i, wid in ipairs(wids) do
    pos[wid] = i
    local f = redis.call('HMGET', k('w', wid), 'user', 'tier', 'tokens', 'cands', 'replica',
                         'ttl', 'fence')
    if not f[1] or f[7] then
      redis.call('ZREM', k('q', p), wid)
    elseif not alive(f[5]) then
      redis.call('ZREM', k('q', p), wid)
      redis.call('DEL', k('w', wid))
    else
      local w = {user = f[1], tier = tonumber(f[2]), tokens = f[3], cands = parse(f[4]),
                 replica = f[5], ttl = f[6]}
      waiters[wid] = w
      local tier = tiers[w.tier]
      if not tier then
        tier = {users = {}, list = {}}
        tiers[w.tier] = tier
        order[#order + 1] = w.tier
      end
      local queue = tier.users[w.user]
      if not queue then
        queue = {}
        tier.users[w.user] = queue
        tier.list[#tier.list + 1] = w.user
      end
      queue[#queue + 1] = wid
    end
  end
  table.sort(order)
  local served = {}
  local function seen(user)
    local s = served[user]
    if s == nil then
      s = tonumber(redis.call('HGET', k('served', p), user) or '0')
      served[user] = s
    end
    return s
  end
  local granted = 0
  local progress = true
  while progress do
    progress = false
    for _, tn in ipairs(order) do
      local tier = tiers[tn]
      local users = {}
      for _, u in ipairs(tier.list) do
        if #tier.users[u] > 0 then users[#users + 1] = u end
      end
      table.sort(users, function(a, b)
        local sa, sb = seen(a), seen(b)
        if sa ~= sb then return sa < sb end
        return pos[tier.users[a][1]] < pos[tier.users[b][1]]
      end)
      for _, u in ipairs(users) do
        local wid = tier.users[u][1]
        local w = waiters[wid]
        local best, rank_p, rank_r = nil, nil, nil
        for _, spec in ipairs(w.cands) do
          local room = fits(p, spec, tonumber(w.tokens), hold)
          if room and (best == nil or spec.prio > rank_p
                       or (spec.prio == rank_p and room > rank_r)) then
            best, rank_p, rank_r = spec, spec.prio, room
          end
        end
        if best then
          local e = redis.call('GET', k('epoch')) or epoch(hold, 0)
          grant(p, best, wid, w, e)
          served[u] = tonumber(redis.call('GET', k('seq')))
          table.remove(tier.users[u], 1)
          granted = granted + 1
          progress = true
          break
        end
      end
      if progress then break end
    end
  end
  if granted > 0 then redis.call('PUBLISH', k('wake', p), '1') end
  -- the earliest moment a waiter may fit by the clock alone, as a delay in ms (-1: none)
  local soon = nil
  for wid, w in pairs(waiters) do
    if redis.call('HEXISTS', k('w', wid), 'fence') == 0 then
      for _, spec in ipairs(w.cands) do
        local at = opening(p, spec, hold)
        if at and (soon == nil or at < soon) then soon = at end
      end
    end
  end
  if soon == nil then return -1 end
  return math.max(0, soon - now)
end

local function claim(wid)
  local f = redis.call('HMGET', k('w', wid), 'fence', 'key', 'at', 'enq')
  if f[1] then
    redis.call('DEL', k('w', wid))
    return {f[1], f[2], tostring(tonumber(f[3]) - tonumber(f[4]))}
  end
  return nil
end

if op == 'enqueue' then
  -- replica, hb, hold, provider, wid, user, tier, tokens, cands, ttl
  local replica, hb, hold = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
  local p, wid, user, tier, tokens, cands, ttl =
    ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10]), ARGV[11], ARGV[12], ARGV[13]
  local e = epoch(hold, hb)
  redis.call('SET', k('alive', replica), '1', 'PX', hb)
  local healthy = false
  for _, spec in ipairs(parse(cands)) do
    if redis.call('HEXISTS', k('health', p), spec.name) == 0 then healthy = true end
  end
  if not healthy then return {e, 'unhealthy'} end
  local seq = redis.call('INCR', k('seq'))
  redis.call('HSET', k('w', wid), 'user', user, 'tier', tier, 'tokens', tokens, 'cands', cands,
             'replica', replica, 'ttl', ttl, 'enq', now)
  redis.call('ZADD', k('q', p), tier * 1e15 + seq, wid)
  local hint = dispatch(p, hold)
  local got = claim(wid)
  if got then return {e, 'granted', got[1], got[2], got[3]} end
  return {e, 'waiting', tostring(hint)}
elseif op == 'poll' then
  -- replica, hb, hold, provider, wid...
  local replica, hb, hold, p = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
  local e = epoch(hold, hb)
  local hint = dispatch(p, hold)
  local out = {e, tostring(hint)}
  for i = 8, #ARGV do
    local wid = ARGV[i]
    local got = claim(wid)
    if got then
      out[#out + 1] = wid
      out[#out + 1] = got[1]
      out[#out + 1] = got[2]
      out[#out + 1] = got[3]
    elseif redis.call('EXISTS', k('w', wid)) == 0 then
      out[#out + 1] = wid
      out[#out + 1] = 'gone'
      out[#out + 1] = ''
      out[#out + 1] = ''
    end
  end
  return out
elseif op == 'abandon' then
  -- provider, wid: out of the queue; a grant made meanwhile is given back
  local p, wid, hold = ARGV[4], ARGV[5], tonumber(ARGV[6])
  redis.call('ZREM', k('q', p), wid)
  local f = redis.call('HMGET', k('w', wid), 'fence', 'key')
  redis.call('DEL', k('w', wid))
  if f[1] then
    redis.call('ZREM', k('lease', p, f[2]), f[1])
    redis.call('HDEL', k('owner', p, f[2]), f[1])
    dispatch(p, hold)
    return 1
  end
  return 0
elseif op == 'release' then
  -- provider, key, fence, hold
  local p, n, fence, hold = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
  local removed = redis.call('ZREM', k('lease', p, n), fence)
  redis.call('HDEL', k('owner', p, n), fence)
  if redis.call('ZCARD', k('q', p)) > 0 then dispatch(p, hold) end
  return removed
elseif op == 'renew' then
  -- provider, key, fence, ttl
  local p, n, fence, ttl = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
  if not redis.call('ZSCORE', k('lease', p, n), fence) then return 0 end
  redis.call('ZADD', k('lease', p, n), 'XX', now + ttl, fence)
  return 1
elseif op == 'tokens' then
  -- provider, key, fence, delta, tpm-limited (1/0)
  local p, n, fence, delta, limited = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8]
  if not redis.call('ZSCORE', k('lease', p, n), fence) then return 0 end
  if limited ~= '1' then return 1 end
  if redis.call('ZSCORE', k('tpm', p, n), fence) then
    redis.call('HINCRBY', k('tpmv', p, n), fence, delta)
    redis.call('INCRBY', k('tpms', p, n), delta)
  elseif delta > 0 then
    -- charged nothing at the grant, or its entry left the window: charged now
    local member = fence .. '+' .. now
    redis.call('ZADD', k('tpm', p, n), now, member)
    redis.call('HSET', k('tpmv', p, n), member, delta)
    redis.call('INCRBY', k('tpms', p, n), delta)
  end
  return 1
elseif op == 'report' then
  -- provider, key, fence, status, retry-after ms, reason
  -- (not fenced: what the vendor answered about the key is true whoever asked)
  local p, n, status, retry = ARGV[4], ARGV[5], tonumber(ARGV[7]), tonumber(ARGV[8])
  if status == 429 then
    local cool = tonumber(redis.call('HGET', k('cool', p), n) or '0')
    redis.call('HSET', k('cool', p), n, math.max(cool, now + retry))
  else
    redis.call('HSET', k('health', p), n, ARGV[9])
  end
  return 1
elseif op == 'health' then
  -- provider, key, healthy (1/0), reason
  local p, n = ARGV[4], ARGV[5]
  if ARGV[6] == '1' then
    redis.call('HDEL', k('health', p), n)
    redis.call('HDEL', k('cool', p), n)
    redis.call('PUBLISH', k('wake', p), '1')
  else
    redis.call('HSET', k('health', p), n, ARGV[7])
  end
  return 1
elseif op == 'beat' then
  -- replica, hb, hold, then (provider, key, fence, expiry-delay ms)... of its live leases
  -- when the epoch changed (they are registered again)
  local replica, hb, hold = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
  local e = epoch(hold, hb)
  redis.call('SET', k('alive', replica), '1', 'PX', hb)
  for i = 7, #ARGV, 4 do
    local p, n, fence, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
    redis.call('ZADD', k('lease', p, n), now + ttl, fence)
    redis.call('HSET', k('owner', p, n), fence, replica)
  end
  return e
elseif op == 'state' then
  -- hold, then (provider, key, rpm-limited, tpm-limited)...: what GET /api/pool shows
  local hold = tonumber(ARGV[4])
  local out = {}
  for i = 5, #ARGV, 4 do
    local p, n = ARGV[i], ARGV[i + 1]
    prune(p, n, hold)
    local cool = tonumber(redis.call('HGET', k('cool', p), n) or '0')
    out[#out + 1] = {
      redis.call('HGET', k('health', p), n) or '',
      tostring(math.max(0, cool - now)),
      redis.call('ZCARD', k('lease', p, n)),
      redis.call('ZCARD', k('rpm', p, n)),
      tonumber(redis.call('GET', k('tpms', p, n)) or '0'),
      tonumber(redis.call('HGET', k('granted', p), n) or '0'),
      redis.call('ZCARD', k('q', p)),
    }
  end
  return out
end
return redis.error_reply('unknown operation ' .. op)
"""
