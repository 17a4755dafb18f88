package redisstore

// Caps in Redis: storage.Caps shared by every replica, so that frequency and
// delivery caps hold exactly however many replicas serve.
//
// # Key layout
//
// A campaign's counters share the hash tag {navad:caps:<campaign>}, so that
// one script reads and writes all of them in one Cluster slot, while
// different campaigns spread over the cluster (caps are written at the rate
// ads are served):
//
//	{navad:caps:<campaign>}:total          string  ads served over the campaign's life; set
//	                                               to 0, expiring in two days, when the
//	                                               campaign is deleted (Store.DeleteCampaign,
//	                                               or a sweep if that failed: capsfree.go)
//	{navad:caps:<campaign>}:day:<day>      string  ads served on a business day (2006-01-02);
//	                                               expires two days after the day ends
//	{navad:caps:<campaign>}:user:<uid>     string  "<n> <end>": ads served in the user's
//	                                               window and when it closes (Unix ms);
//	                                               expires then
//	{navad:caps:<campaign>}:given:<giver>  string  the highest give-back number of a replica's
//	                                               pacer applied (storage.GiveBack); expires
//	                                               a day after its last
//	{navad:caps:<campaign>}:leased:<giver> string  "<number> <granted>": the last lease of a
//	                                               replica's pacer (storage.LeaseID); expires
//	                                               a day after it
//
// <uid> is the first 16 bytes of the SHA-256 of the user key, in hex: the
// user key itself is never stored, and two keys that differ in one byte are
// two users. Campaign IDs may not hold braces, which would change the tag.
//
// Reserve is one script: it reads the three counters, treats a window whose
// end is not after the request's Now as closed, refuses when any count is at
// its limit, and otherwise increments all of them, opening a window when
// none is open. A window it finds full is remembered by the replica until
// it closes (atCap), and that user's ads refused without a script. Expiry
// is set relative to the request's Now, as storage.Caps asks. A
// reservation is as durable as Redis's appendfsync makes it (README,
// "Scaling out").
//
// Lease is one script over the total, the day and the pacer's last lease:
// it grants what the limits leave, up to the number asked, with INCRBY,
// and records its number and grant, so that sent again (its reply lost) it
// grants the same ads without counting them twice. Return takes ads back
// with DECRBY, never below zero and never recreating a day that expired.
// An ad taken from a lease is reserved for its user alone, by a script
// over the user's key only (package pacing leases budgets on Redis, so
// most ads are served without a round trip).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

var _ storage.Caps = (*Caps)(nil)

// capsDayKeep is how long after its end a day's count is kept.
const capsDayKeep = 48 * time.Hour

// Caps is storage.Caps in Redis, on a Store's connection. Create it with
// Store.Caps; it is safe for concurrent use. Each Reserve is one round trip
// to Redis (a few tens of microseconds of Redis time), but for a user this
// replica found at the cap (atCap).
type Caps struct {
	s      *Store
	closed atomic.Bool
	full   atCap
}

// Caps returns the frequency and delivery caps kept in s's Redis. Closing
// the Caps does not close s; closing s makes the Caps fail.
func (s *Store) Caps() *Caps { return &Caps{s: s, full: atCap{m: make(map[string]fullWindow)}} }

// atCap remembers the users' windows a reservation found full. A window
// only fills until it closes at its end, so a window found holding limit
// ads refuses every request with a limit no higher until then, and the
// replica refuses those itself instead of asking Redis each time: a user
// who searches again and again once at a campaign's cap costs no script.
// (Should Redis lose a window, this replica still refuses its user until
// the lost window's end: it errs towards the cap, never past it.)
type atCap struct {
	mu sync.Mutex
	m  map[string]fullWindow // by the window's key
}

// fullWindow is a window found full: when it closes (Unix ms) and the
// limit it was found at.
type fullWindow struct{ end, limit int64 }

// atCapMax bounds the windows remembered: some 10 MB at the most.
const atCapMax = 100_000

// refuses reports whether the window key is known full for limit at now.
func (a *atCap) refuses(key string, limit, now int64) bool {
	a.mu.Lock()
	w, ok := a.m[key]
	a.mu.Unlock()
	return ok && now < w.end && limit <= w.limit
}

// remember notes that the window key held limit ads until end.
func (a *atCap) remember(key string, limit, end, now int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.m) >= atCapMax {
		for k, w := range a.m {
			if w.end <= now {
				delete(a.m, k)
			}
		}
		if len(a.m) >= atCapMax*3/4 {
			clear(a.m) // mostly open windows: start again rather than sweep often
		}
	}
	a.m[key] = fullWindow{end, limit}
}

func capsTag(campaignID string) string { return "{navad:caps:" + campaignID + "}" }

// uidKey is the hex of the first 16 bytes of the SHA-256 of uid.
func uidKey(uid string) string {
	sum := sha256.Sum256([]byte(uid))
	return hex.EncodeToString(sum[:16])
}

// userKey returns the key of uid's window of a campaign.
func userKey(campaignID, uid string) string { return capsTag(campaignID) + ":user:" + uidKey(uid) }

// capsKeys returns the keys of a campaign's total, day and (when uid is
// set) user window.
func capsKeys(campaignID, day, uid string) []string {
	tag := capsTag(campaignID)
	keys := []string{tag + ":total", tag + ":day:" + day}
	if uid != "" {
		keys = append(keys, userKey(campaignID, uid))
	}
	return keys
}

// windowLua defines read_window(key), the count and end (Unix ms) of a
// user's window, or nils, and window(key, now, limit, period): minus the
// window's end when the window open at now holds limit ads, else it counts
// the ad in it, opening one of period ms when none is open, and returns 1.
// A window is a string "<n> <end>", so that opening one is a single write
// (SET with its expiry), not a hash and its PEXPIRE: less of Redis's time
// for a user's first ad of a campaign, the commonest reservation with a
// national audience. A window kept as a hash (n, end) by an older navad is
// read, and replaced in place keeping its expiry.
const windowLua = `
local function read_window(key)
  local v = redis.pcall('GET', key)
  if type(v) == 'table' and v.err then
    local w = redis.call('HMGET', key, 'n', 'end')
    return tonumber(w[1] or '0'), tonumber(w[2] or '0')
  elseif v then
    local sp = string.find(v, ' ', 1, true)
    if sp then return tonumber(string.sub(v, 1, sp - 1)), tonumber(string.sub(v, sp + 1)) end
  end
  return nil, nil
end
local function window(key, now, limit, period)
  local n, e = read_window(key)
  if n and e and now < e then
    if n >= limit then return -e end
    redis.call('SET', key, string.format('%d %d', n + 1, e), 'KEEPTTL')
  else
    redis.call('SET', key, string.format('1 %d', now + period), 'PX', period)
  end
  return 1
end
`

// scriptReserve: KEYS: total, day[, user]. ARGV: now (Unix ms), total
// limit, daily limit, day TTL (ms), user limit, user period (ms). Limits of
// 0 are none. Returns 1 when it counted the ad, 0 when the total or daily
// cap refused it, minus the window's end when the user's did.
var scriptReserve = redis.NewScript(windowLua + `
local now = tonumber(ARGV[1])
local tl, dl = tonumber(ARGV[2]), tonumber(ARGV[3])
if tl > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= tl then return 0 end
if dl > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= dl then return 0 end
if KEYS[3] then
  local w = window(KEYS[3], now, tonumber(ARGV[5]), tonumber(ARGV[6]))
  if w ~= 1 then return w end
end
redis.call('INCR', KEYS[1])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
`)

// scriptReserveUser reserves an ad taken from a lease: its user's window
// only. KEYS: user. ARGV: now (Unix ms), user limit, user period (ms).
// Returns as window does.
var scriptReserveUser = redis.NewScript(windowLua + `
return window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
`)

// scriptLease: KEYS: total, day, the holder's last lease. ARGV: total
// limit, daily limit, day TTL (ms), want, the lease's number, the last
// lease's lifetime in seconds. Returns {granted, left}, left -1 when
// neither limit is set. The last lease is "<number> <granted>": a lease
// under its number (sent again) grants the same without counting, one
// under a lower number nothing.
var scriptLease = redis.NewScript(`
local tl, dl = tonumber(ARGV[1]), tonumber(ARGV[2])
local left = -1
if tl > 0 then left = math.max(tl - tonumber(redis.call('GET', KEYS[1]) or '0'), 0) end
if dl > 0 then
  local d = math.max(dl - tonumber(redis.call('GET', KEYS[2]) or '0'), 0)
  if left < 0 or d < left then left = d end
end
local seq = tonumber(ARGV[5])
local last = redis.call('GET', KEYS[3])
if last then
  local sp = string.find(last, ' ', 1, true)
  local lseq = tonumber(string.sub(last, 1, sp - 1))
  if seq < lseq then return {0, left} end
  if seq == lseq then return {tonumber(string.sub(last, sp + 1)), left} end
end
local g = tonumber(ARGV[4])
if left >= 0 and left < g then g = left end
if g > 0 then
  redis.call('INCRBY', KEYS[1], g)
  redis.call('INCRBY', KEYS[2], g)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call('SET', KEYS[3], ARGV[5] .. ' ' .. g, 'EX', tonumber(ARGV[6]))
if left >= 0 then left = left - g end
return {g, left}
`)

// scriptReturn: KEYS: total, day, the giver's highest give-back number.
// ARGV: n, that number's lifetime in seconds, the give-back's number.
// Unless the number is not above the giver's highest (a Return sent
// again), records it and takes n off each count that exists, never below
// zero, keeping the day's expiry. Returns 1 when it took them, 0 when not.
var scriptReturn = redis.NewScript(`
local n = tonumber(ARGV[1])
local seq = tonumber(ARGV[3])
if seq <= tonumber(redis.call('GET', KEYS[3]) or '0') then return 0 end
redis.call('SET', KEYS[3], ARGV[3], 'EX', tonumber(ARGV[2]))
for i = 1, 2 do
  local v = tonumber(redis.call('GET', KEYS[i]) or '-1')
  if v > 0 then redis.call('DECRBY', KEYS[i], math.min(n, v)) end
end
return 1
`)

// scriptServed: KEYS: total, day[, user]. ARGV: now (Unix ms). Returns
// total, daily and the user's count in the window open at now.
var scriptServed = redis.NewScript(windowLua + `
local t = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
local u = 0
if KEYS[3] then
  local n, e = read_window(KEYS[3])
  if n and e and tonumber(ARGV[1]) < e then u = n end
end
return {t, d, u}
`)

func (c *Caps) begin(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return c.s.begin(ctx)
}

func checkCampaignKey(id string) error {
	if err := checkKey("campaign id", id); err != nil {
		return campaigns.Errorf(campaigns.Invalid, "%v", err)
	}
	if strings.ContainsAny(id, "{}") {
		return campaigns.Errorf(campaigns.Invalid, "campaign id %q contains a brace", id)
	}
	return nil
}

// checkCapsKeys checks what names a campaign's keys.
func checkCapsKeys(campaignID, day string) error {
	if err := checkCampaignKey(campaignID); err != nil {
		return err
	}
	if strings.Contains(day, sep) {
		return campaigns.Errorf(campaigns.Invalid, "day %q contains a NUL byte", day)
	}
	return nil
}

// Reserve counts one served ad if no cap of r is reached, in one script;
// see storage.Caps.
func (c *Caps) Reserve(ctx context.Context, r storage.CapRequest) (bool, error) {
	const op = "reserve"
	if err := r.Check(); err != nil {
		return false, err
	}
	if err := checkCapsKeys(r.CampaignID, r.Day); err != nil {
		return false, err
	}
	if err := c.begin(ctx); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	now := r.Now.UnixMilli()
	window := "" // the user's window's key, when r caps the user
	if r.UserCapped() {
		window = userKey(r.CampaignID, r.UID)
		if c.full.refuses(window, r.UserLimit, now) {
			return false, nil
		}
	}
	period := max(r.UserPeriod.Milliseconds(), 1)
	var cmd *redis.Cmd
	if r.Leased {
		cmd = c.s.pipe.run(ctx, scriptReserveUser, []string{window}, now, r.UserLimit, period)
	} else {
		keys := capsKeys(r.CampaignID, r.Day, "")
		if window != "" {
			keys = append(keys, window)
		}
		dayTTL := max(r.DayEnd.Add(capsDayKeep).UnixMilli()-now, 1000)
		cmd = c.s.pipe.run(ctx, scriptReserve, keys, now, r.TotalLimit, r.DailyLimit, dayTTL, r.UserLimit, period)
	}
	n, err := cmd.Int64()
	if err != nil {
		return false, c.s.fail(ctx, op, err)
	}
	if n < 0 { // the user's window is full until -n
		c.full.remember(window, r.UserLimit, -n, now)
	}
	return n == 1, nil
}

// Lease counts up to want ads against the total and the day at once, in
// one script; see storage.Caps.
func (c *Caps) Lease(ctx context.Context, r storage.CapRequest, want int64, id storage.LeaseID) (granted, left int64, err error) {
	const op = "lease"
	if err := r.CheckLease(want); err != nil {
		return 0, 0, err
	}
	if err := id.Check(); err != nil {
		return 0, 0, err
	}
	if err := checkCapsKeys(r.CampaignID, r.Day); err != nil {
		return 0, 0, err
	}
	// One that never reached Redis says so (storage.ErrNotApplied), as a
	// Return does: the pacer asks anew rather than send it again.
	if err := c.begin(ctx); err != nil {
		return 0, 0, fmt.Errorf("%s: %w: %w", op, storage.ErrNotApplied, err)
	}
	dayTTL := max(r.DayEnd.Add(capsDayKeep).UnixMilli()-r.Now.UnixMilli(), 1000)
	keys := append(capsKeys(r.CampaignID, r.Day, ""), capsTag(r.CampaignID)+":leased:"+id.By)
	v, err := c.s.pipe.run(ctx, scriptLease, keys, r.TotalLimit, r.DailyLimit, dayTTL, want,
		strconv.FormatUint(id.Seq, 10), int64(storage.GiverTTL/time.Second)).Int64Slice()
	if err != nil {
		if c.s.neverSent(err) {
			return 0, 0, fmt.Errorf("%w: %w", storage.ErrNotApplied, c.s.fail(ctx, op, err))
		}
		return 0, 0, c.s.fail(ctx, op, err)
	}
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("%s: unexpected reply %v", op, v)
	}
	if v[1] < 0 {
		v[1] = math.MaxInt64
	}
	return v[0], v[1], nil
}

// Return gives back n leased ads that were not served, in one script that
// first checks gb's number against its giver's highest for the campaign (a
// key beside the campaign's counters, kept storage.GiverTTL after its
// last give-back) and takes nothing back when it is not above; see
// storage.Caps.
func (c *Caps) Return(ctx context.Context, campaignID, day string, n int64, gb storage.GiveBack) error {
	const op = "return"
	if n < 1 {
		return campaigns.Errorf(campaigns.Invalid, "return of %d ads: want at least 1", n)
	}
	if err := gb.Check(); err != nil {
		return err
	}
	if err := checkCapsKeys(campaignID, day); err != nil {
		return err
	}
	// A return that never reached Redis says so (storage.ErrNotApplied):
	// the pacer may send it again whenever, where one that may have
	// happened it sends again only while Redis keeps its number.
	if err := c.begin(ctx); err != nil {
		return fmt.Errorf("%s: %w: %w", op, storage.ErrNotApplied, err)
	}
	keys := append(capsKeys(campaignID, day, ""), capsTag(campaignID)+":given:"+gb.By)
	if err := c.s.pipe.run(ctx, scriptReturn, keys, n, int64(storage.GiverTTL/time.Second), strconv.FormatUint(gb.Seq, 10)).Err(); err != nil {
		if c.s.neverSent(err) {
			return fmt.Errorf("%w: %w", storage.ErrNotApplied, c.s.fail(ctx, op, err))
		}
		return c.s.fail(ctx, op, err)
	}
	return nil
}

// Served returns a campaign's counts in one script; see storage.Caps.
func (c *Caps) Served(ctx context.Context, campaignID, day, uid string, now time.Time) (storage.CapCounts, error) {
	const op = "served"
	if err := c.begin(ctx); err != nil {
		return storage.CapCounts{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkCampaignKey(campaignID); err != nil {
		return storage.CapCounts{}, err
	}
	v, err := scriptServed.Run(ctx, c.s.client, capsKeys(campaignID, day, uid), now.UnixMilli()).Int64Slice()
	if err != nil {
		return storage.CapCounts{}, c.s.fail(ctx, op, err)
	}
	if len(v) != 3 {
		return storage.CapCounts{}, fmt.Errorf("%s: unexpected reply %v", op, v)
	}
	return storage.CapCounts{Total: v[0], Daily: v[1], User: v[2]}, nil
}

// Close makes further calls fail. The counts are in Redis already; the
// Store stays open. Closing again does nothing.
func (c *Caps) Close() error {
	c.closed.Store(true)
	return nil
}
