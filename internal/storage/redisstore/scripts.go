package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts below make each write atomic: Redis runs a script to the
// end with nothing in between. Each script declares every key it touches,
// all in one hash slot, as Redis Cluster requires. A write script appends its
// change record with feedLua; the record's fields are documented in feed.go.
//
// A script is not rolled back when a command in it fails: the writes before
// it stay. Redis refuses a script's first write, not a later one, for want
// of memory or on a read-only replica, but it checks a user's ACL at every
// command. So each write script first asks allowed() about every write it
// may make, and only then writes: a user refused any of them gets NOPERM
// with nothing written, never a change without its record.

// feedLua defines append_feed(seqKey, feedKey, retentionMs, field, value, …):
// it takes the stream's next sequence number and appends a record carrying
// it, dropping records older than the retention, and returns the sequence
// number and the record's entry ID. The stream ID is Redis's clock, so MINID
// trims by age; the sequence number, not the ID, is what readers check for
// gaps. A write script returns both to its caller ({status, seq, id}, parsed
// by writeReply; {status} when it wrote nothing), so that the replica that
// made the write knows where its record is (Store.OnWrite): should Redis lose
// the write before that replica has read the record, the sequence number or
// the ID will not be Redis's any more.
//
// allowed({command, key, arg…}, …) raises NOPERM unless the user may run
// every command given, and the feed's INCR and XADD on seq_key and feed_key.
// redis.acl_check_cmd is Redis 7's; before it, ACLs are not checked ahead.
const feedLua = `
local function allowed(seq_key, feed_key, ...)
  if not redis.acl_check_cmd then return end
  local cmds = {{'INCR', seq_key}, {'XADD', feed_key, '*', 'seq', '1'}, ...}
  for _, c in ipairs(cmds) do
    if not redis.acl_check_cmd(unpack(c)) then
      error({err = 'NOPERM this user has no permissions to run the ' .. c[1] .. ' command on ' .. c[2] .. ', nothing written'})
    end
  end
end
local function append_feed(seq_key, feed_key, retention_ms, ...)
  local seq = redis.call('INCR', seq_key)
  local t = redis.call('TIME')
  local min_id = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(retention_ms))
  local id = redis.call('XADD', feed_key, 'MINID', '~', min_id, '*', 'seq', seq, ...)
  return seq, id
end
`

// scriptPutStores writes an upload (PutStores). KEYS: stores, advertisers,
// seq, feed. ARGV: retention, origin, advertiser, "stores" or "reload", the
// NUL-joined IDs for "stores", then store ID and encoded store per store.
// HSET takes 1,000 stores at a time: unpack's limit is 8,000 values.
// Returns {"ok", seq, id}.
var scriptPutStores = redis.NewScript(feedLua + `
allowed(KEYS[3], KEYS[4], {'ZADD', KEYS[2], '0', 'a'}, {'HSET', KEYS[1], 'f', 'v'})
local seq, rid
if ARGV[4] == 'reload' then
  seq, rid = append_feed(KEYS[3], KEYS[4], ARGV[1], 'op', 'reload', 'origin', ARGV[2], 'adv', ARGV[3])
else
  seq, rid = append_feed(KEYS[3], KEYS[4], ARGV[1], 'op', 'stores', 'origin', ARGV[2], 'adv', ARGV[3], 'ids', ARGV[5])
end
redis.call('ZADD', KEYS[2], 0, ARGV[3])
for i = 6, #ARGV, 2000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
return {'ok', seq, rid}
`)

// scriptInitMeta creates the meta hash when it is missing and returns
// schema, shards and epoch. KEYS: meta. ARGV: schema, shards, new epoch.
var scriptInitMeta = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  redis.call('HSET', KEYS[1], 'schema', ARGV[1], 'shards', ARGV[2], 'epoch', ARGV[3])
end
return redis.call('HMGET', KEYS[1], 'schema', 'shards', 'epoch')
`)

// scriptCreateAccount: KEYS: accounts, keys, seq, feed. ARGV: retention,
// origin, id, JSON, key hash… Returns {"ok", seq, id}, {"exists"} or {"key"}.
var scriptCreateAccount = redis.NewScript(feedLua + `
local id = ARGV[3]
if redis.call('HEXISTS', KEYS[1], id) == 1 then return {'exists'} end
for i = 5, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then return {'key'} end
end
allowed(KEYS[3], KEYS[4], {'HSET', KEYS[2], 'f', 'v'}, {'HSET', KEYS[1], 'f', 'v'})
for i = 5, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], id) end
redis.call('HSET', KEYS[1], id, ARGV[4])
local seq, rid = append_feed(KEYS[3], KEYS[4], ARGV[1], 'op', 'account', 'origin', ARGV[2], 'id', id)
return {'ok', seq, rid}
`)

// scriptSetAccountKeys replaces an account's key hashes if the account is
// still as the caller read it. KEYS: accounts, keys, seq, feed. ARGV:
// retention, origin, id, JSON read, new JSON, number of old hashes n, old
// hash × n, new hash… Returns {"ok", seq, id}, {"notfound"}, {"changed"} or
// {"key"}.
var scriptSetAccountKeys = redis.NewScript(feedLua + `
local id = ARGV[3]
local cur = redis.call('HGET', KEYS[1], id)
if not cur then return {'notfound'} end
if cur ~= ARGV[4] then return {'changed'} end
local n = tonumber(ARGV[6])
local first_new = 7 + n
local keep = {}
for i = first_new, #ARGV do
  local owner = redis.call('HGET', KEYS[2], ARGV[i])
  if owner and owner ~= id then return {'key'} end
  keep[ARGV[i]] = true
end
allowed(KEYS[3], KEYS[4], {'HDEL', KEYS[2], 'f'}, {'HSET', KEYS[2], 'f', 'v'}, {'HSET', KEYS[1], 'f', 'v'})
for i = 7, 6 + n do
  if not keep[ARGV[i]] then redis.call('HDEL', KEYS[2], ARGV[i]) end
end
for i = first_new, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], id) end
redis.call('HSET', KEYS[1], id, ARGV[5])
local seq, rid = append_feed(KEYS[3], KEYS[4], ARGV[1], 'op', 'account', 'origin', ARGV[2], 'id', id)
return {'ok', seq, rid}
`)

// scriptAccountByKey returns the JSON of the account holding a key hash, or
// nil. KEYS: accounts, keys. ARGV: key hash.
var scriptAccountByKey = redis.NewScript(`
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return false end
return redis.call('HGET', KEYS[1], id)
`)

// scriptPutCampaign: KEYS: campaigns, campaign_adv, campaigns_by_adv, seq,
// feed, campaigns_gone. ARGV: retention, origin, id, advertiser, JSON, the
// mode, and for "update" the campaign's JSON as read. "put" writes unless
// the ID is a deleted campaign's ("gone"); "create" writes only an ID
// never taken ("exists" or "gone" otherwise); "update" writes only over
// the campaign as read ("notfound" when it is no more, "changed" when
// another write came between). Returns {"ok", seq, id} when it wrote, else
// {reason}.
var scriptPutCampaign = redis.NewScript(feedLua + `
local id, adv = ARGV[3], ARGV[4]
local old = redis.call('HGET', KEYS[2], id)
if ARGV[6] == 'update' then
  local cur = redis.call('HGET', KEYS[1], id)
  if not cur then return {'notfound'} end
  if cur ~= ARGV[7] then return {'changed'} end
else
  if ARGV[6] == 'create' and old then return {'exists'} end
  if redis.call('SISMEMBER', KEYS[6], id) == 1 then return {'gone'} end
end
allowed(KEYS[4], KEYS[5], {'ZREM', KEYS[3], 'm'}, {'ZADD', KEYS[3], '0', 'm'}, {'HSET', KEYS[1], 'f', 'v'}, {'HSET', KEYS[2], 'f', 'v'})
if old and old ~= adv then redis.call('ZREM', KEYS[3], old .. '\0' .. id) end
redis.call('ZADD', KEYS[3], 0, adv .. '\0' .. id)
redis.call('HSET', KEYS[1], id, ARGV[5])
redis.call('HSET', KEYS[2], id, adv)
local seq, rid = append_feed(KEYS[4], KEYS[5], ARGV[1], 'op', 'campaign', 'origin', ARGV[2], 'id', id, 'adv', adv)
return {'ok', seq, rid}
`)

// scriptDeleteCampaign: same KEYS and caps_pending; ARGV: retention,
// origin, id. It keeps the ID in campaigns_gone, and in caps_pending until
// DeleteCampaign or a sweep has given the campaign's caps total its expiry
// (caps.go): the total is in another Cluster slot, so this script cannot.
// Returns {"ok", seq, id}, or {"notfound"} when there is no such campaign.
var scriptDeleteCampaign = redis.NewScript(feedLua + `
local id = ARGV[3]
local adv = redis.call('HGET', KEYS[2], id)
if not adv then return {'notfound'} end
allowed(KEYS[4], KEYS[5], {'ZREM', KEYS[3], 'm'}, {'HDEL', KEYS[1], 'f'}, {'HDEL', KEYS[2], 'f'}, {'SADD', KEYS[6], 'm'}, {'SADD', KEYS[7], 'm'})
redis.call('ZREM', KEYS[3], adv .. '\0' .. id)
redis.call('HDEL', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
redis.call('SADD', KEYS[6], id)
redis.call('SADD', KEYS[7], id)
local seq, rid = append_feed(KEYS[4], KEYS[5], ARGV[1], 'op', 'campaign', 'origin', ARGV[2], 'id', id, 'adv', adv)
return {'ok', seq, rid}
`)

// scriptDeleteStore removes a store and its stock members. KEYS: stores,
// out, seq, feed, stockat. ARGV: retention, origin, advertiser, store ID.
// Returns {"ok", seq, id}, or {"notfound"} when there is no such store.
var scriptDeleteStore = redis.NewScript(feedLua + `
local id = ARGV[4]
if redis.call('HEXISTS', KEYS[1], id) == 0 then return {'notfound'} end
allowed(KEYS[3], KEYS[4], {'HDEL', KEYS[1], 'f'}, {'ZREMRANGEBYLEX', KEYS[2], '-', '+'}, {'ZREMRANGEBYLEX', KEYS[5], '-', '+'})
redis.call('HDEL', KEYS[1], id)
redis.call('ZREMRANGEBYLEX', KEYS[2], '[' .. id .. '\0', '(' .. id .. '\1')
redis.call('ZREMRANGEBYLEX', KEYS[5], '[' .. id .. '\0', '(' .. id .. '\1')
local seq, rid = append_feed(KEYS[3], KEYS[4], ARGV[1], 'op', 'stores', 'origin', ARGV[2], 'adv', ARGV[3], 'ids', id, 'deleted', '1')
return {'ok', seq, rid}
`)

// scriptPutStock applies a point-of-sale batch if every row names a store of
// the advertiser. KEYS: stores, out, seq, feed, stockat. ARGV: retention,
// origin, advertiser, encoded rows for the record, then per row: store ID,
// product ID, "1" in stock or "0" out, and its AsOf as a 16-digit count of
// Unix milliseconds or "" for none.
//
// stockat keeps each (store, product)'s last AsOf as a member
// store NUL product NUL time, all at score 0: the fixed-width time sorts as
// it reads, and a store's members are one lexical range for DeleteStore.
//
// Returns {0, seq, id, stale rows...} (numbers from 1) when the batch was
// applied, {1, bad rows...} (rows naming unknown stores) when nothing was
// written.
var scriptPutStock = redis.NewScript(feedLua + `
local bad = {1}
for i = 5, #ARGV, 4 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then bad[#bad + 1] = (i - 5) / 4 + 1 end
end
if #bad > 1 then return bad end
allowed(KEYS[3], KEYS[4], {'ZREM', KEYS[2], 'm'}, {'ZADD', KEYS[2], '0', 'm'}, {'ZREM', KEYS[5], 'm'}, {'ZADD', KEYS[5], '0', 'm'})
local stale = {0, 0, ''} -- status, then seq and ID once the record is appended
for i = 5, #ARGV, 4 do
  local m = ARGV[i] .. '\0' .. ARGV[i + 1]
  local at = ARGV[i + 3]
  local kept = redis.call('ZRANGEBYLEX', KEYS[5], '[' .. m .. '\0', '(' .. m .. '\1', 'LIMIT', 0, 1)[1]
  if at ~= '' and kept and at < string.sub(kept, #m + 2) then
    stale[#stale + 1] = (i - 5) / 4 + 1
  else
    if kept then redis.call('ZREM', KEYS[5], kept) end
    if at ~= '' then redis.call('ZADD', KEYS[5], 0, m .. '\0' .. at) end
    if ARGV[i + 2] == '1' then
      redis.call('ZREM', KEYS[2], m)
    else
      redis.call('ZADD', KEYS[2], 0, m)
    end
  end
end
local seq, rid = append_feed(KEYS[3], KEYS[4], ARGV[1], 'op', 'stock', 'origin', ARGV[2], 'adv', ARGV[3], 'rows', ARGV[4])
stale[2], stale[3] = seq, rid
return stale
`)

// scriptHeadSrc returns a feed's last sequence number and last entry ID in
// one atomic read. KEYS: seq, feed.
const scriptHeadSrc = `
local seq = redis.call('GET', KEYS[1]) or '0'
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local id = '0-0'
if last[1] then id = last[1][1] end
return {seq, id}
`

// scriptSeqSrc returns a feed's last sequence number and the last entry ID
// Redis generated for it ("0-0" when the stream does not exist), in one
// atomic read. KEYS: seq, feed.
const scriptSeqSrc = `
local seq = redis.call('GET', KEYS[1]) or '0'
if redis.call('EXISTS', KEYS[2]) == 0 then return {seq, '0-0'} end
local info = redis.call('XINFO', 'STREAM', KEYS[2])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return {seq, info[i + 1]} end
end
return redis.error_reply('XINFO STREAM gave no last-generated-id')
`
