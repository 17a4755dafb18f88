// Package pacing holds campaigns to their delivery caps (daily, by business
// day in the configured time zone, and total) and frequency caps (per user
// and period) on the decision path. Its Pacer is the serving.Pacer the
// engine asks before it serves an ad; the counting itself is a storage.Caps,
// the embedded one or Redis, so that replicas sharing a backend share caps.
//
// # When the caps backend cannot answer
//
// With Redis down (or answering nothing within the decision's deadline) a
// reservation fails. By default the Pacer then decides by the kind of cap,
// because the two kinds protect different things:
//
//   - A campaign with a delivery cap (daily or total budget) is refused:
//     it fails closed. A budget is a promise to the advertiser and the
//     basis of the bill; every replica serving it blind for the length of an
//     outage could overshoot it without bound (thousands of ads a second,
//     for minutes), and an overshoot cannot be taken back. Refusing costs
//     impressions only while Redis is away: the day's budget is still there
//     to be served when it returns.
//   - A campaign with only a frequency cap is served, uncapped per user: it
//     fails open. A frequency cap protects the user's experience; breaking
//     it costs a few extra sightings of an ad for the length of the outage,
//     while refusing would stop every frequency-capped campaign, most
//     branded campaigns, on every replica.
//
// FailOpen and FailClosed make every campaign do one or the other. After a
// reservation fails with Unavailable the Pacer does not ask the backend
// again for ProbeInterval, so that an outage costs decisions no waiting:
// each applies the policy at once. A reservation that ran out of time while
// the backend went on answering others within stallWindow does not count as
// an outage: that is an overloaded process (BENCHMARKS.md, issue 7), and
// that ad is refused, whatever the policy (errLate).
//
// # Leases
//
// With Leases (navad on Redis), a replica does not reserve every ad of a
// budgeted campaign on its own. It leases a block of the campaign's ads
// (counted against its daily and total limits in one round trip), serves
// from it, and leases again when it is used up. A lease is sized to last
// about leaseSpan at the rate the campaign was served lately (at most
// maxLease ads), and takes at most a sixteenth of what the limits leave:
// near a limit leases shrink to single ads, so that replicas serving the
// same campaign reach its limit exactly and never pass it. Ads a replica
// holds and does not serve are given back (storage.Caps.Return) once the
// lease has gone unused for returnIdle, when the day or the budget changes,
// and on Close. The price:
//
//   - the counts in the backend include ads leased and not served yet (at
//     most some ten seconds of each campaign's traffic per replica);
//   - a replica killed without Close loses what it held: those ads stay
//     counted as served, so the campaign delivers that many fewer (never
//     more) than its budget; so does a Return Close could not make, or one
//     that failed for retryReturnsFor. A Return that fails is sent again at
//     the next rounds under its number (storage.GiveBack), which the
//     backend applies once however often it comes, so a retry of one that
//     landed and lost its reply takes nothing back twice;
//   - near a limit, another replica may be refused for up to returnIdle
//     while a replica that stopped serving the campaign holds its last ads.
//
// An ad of a frequency-capped campaign still asks the backend for its
// user's window (storage.CapRequest.Leased), since users move between
// replicas. During an outage, ads already leased are served: they were
// counted before it. When the lease is empty, the outage policy applies;
// when only the user's window cannot be checked, the ad is treated as
// frequency-capped only.
package pacing

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage"
)

var _ serving.Pacer = (*Pacer)(nil)

// Pacer is a serving.Pacer over a storage.Caps. Safe for concurrent use.
type Pacer struct {
	caps   storage.Caps
	loc    *time.Location
	policy policy
	log    *slog.Logger

	leases *leases // nil: every capped ad is reserved alone
	closed atomic.Bool

	day       atomic.Pointer[businessDay]
	errs      atomic.Uint64
	lastLog   atomic.Int64 // Unix ns of the last error logged
	downUntil atomic.Int64 // Unix ns: the backend is not asked before; 0 when not resting
	lastOK    atomic.Int64 // Unix ns: when a reservation last succeeded (to the millisecond)
}

// ProbeInterval is how long after a reservation failed with Unavailable
// the Pacer applies its outage policy without asking the backend.
const ProbeInterval = 500 * time.Millisecond

type policy uint8

const (
	byKind     policy = iota // delivery caps closed, frequency caps open
	failOpen                 // every campaign served
	failClosed               // every capped campaign refused
)

func (p policy) String() string {
	return [...]string{"delivery caps closed, frequency caps open", "open", "closed"}[p]
}

// Option changes a Pacer.
type Option func(*Pacer)

// FailOpen makes the Pacer serve every ad when the caps backend cannot
// answer (Redis unreachable, the decision's deadline passed), instead of
// deciding by the kind of cap (see the package comment). Campaigns without
// caps never ask the backend, so they serve either way.
func FailOpen() Option { return func(p *Pacer) { p.policy = failOpen } }

// FailClosed makes the Pacer refuse every capped ad when the caps backend
// cannot answer, frequency-capped campaigns included.
func FailClosed() Option { return func(p *Pacer) { p.policy = failClosed } }

// Leases makes the Pacer count delivery caps in leases: it takes a
// campaign's ads from the backend in blocks (storage.Caps.Lease), serves
// them without asking again, and gives back what it did not serve. It is
// for counters shared by replicas over a network (Redis), where it saves
// a round trip for most ads; an ad of a frequency-capped campaign still
// asks the backend for its user's window. The Pacer must then be closed
// (Close), to give back what it holds. See the package comment.
func Leases() Option { return func(p *Pacer) { p.leases = newLeases() } }

// New returns a Pacer counting in caps, with business days in loc. logger
// receives backend errors, at most one line every ten seconds.
func New(caps storage.Caps, loc *time.Location, logger *slog.Logger, opts ...Option) (*Pacer, error) {
	if caps == nil || loc == nil || logger == nil {
		return nil, errors.New("new pacer: caps, location and logger are required")
	}
	p := &Pacer{caps: caps, loc: loc, log: logger}
	for _, o := range opts {
		o(p)
	}
	if p.leases != nil {
		go p.returnLoop()
	}
	return p, nil
}

// Close gives back the ads the Pacer's leases hold and not served, and
// stops leasing: later decisions reserve each capped ad alone. Ads that
// cannot be given back (the backend is unreachable) stay counted as
// served, and Close reports the error. It does not close the backend.
// Closing again does nothing.
func (p *Pacer) Close() error {
	if p.leases == nil || p.closed.Swap(true) {
		return nil
	}
	close(p.leases.stop)
	<-p.leases.done
	// Decisions that found the Pacer open start no flight once they see it
	// closed under their lease's lock: pass every lock once, then wait for
	// the flights out.
	p.leases.mu.RLock()
	for _, l := range p.leases.m {
		l.mu.Lock() // a barrier: empty on purpose
		l.mu.Unlock()
	}
	p.leases.mu.RUnlock()
	p.leases.flights.Wait()
	return p.returnLeases(time.Now().Add(time.Hour), true) // every lease, used or not
}

// Allow reserves one served ad of c for uid at now, and reports false when
// one of c's caps is reached (serving.Pacer). A campaign without caps is
// allowed without asking the backend; a request without uid is never
// capped per user. It allocates nothing but what the backend does.
func (p *Pacer) Allow(ctx context.Context, c *serving.Campaign, uid string, now time.Time) bool {
	l := c.Limits()
	userCapped := l.PerUser > 0 && uid != ""
	budgeted := l.Daily > 0 || l.Total > 0
	if !budgeted && !userCapped {
		return true
	}
	day := p.businessDay(now)
	id, slot := c.CapKey()
	r := storage.CapRequest{
		CampaignID: id,
		Now:        now,
		TotalLimit: l.Total,
		Day:        day.name,
		DayEnd:     day.end,
		DailyLimit: l.Daily,
		Slot:       slot,
	}
	if userCapped {
		r.UID, r.UserLimit, r.UserPeriod = uid, l.PerUser, l.Period
	}
	if p.leases != nil && budgeted {
		if ok, err := p.allowLeased(ctx, &r); !errors.Is(err, errLeasesClosed) {
			return ok
		}
	}
	ok, err := p.reserve(ctx, &r)
	if err != nil {
		return p.outage(err, budgeted)
	}
	return ok
}

// allowLeased decides for an ad of a budgeted campaign from its lease,
// then reserves its user's window when r names one. It returns
// errLeasesClosed, and nothing else, when the ad must be reserved alone.
func (p *Pacer) allowLeased(ctx context.Context, r *storage.CapRequest) (bool, error) {
	l := p.leases.of(r.CampaignID)
	ok, err := p.take(ctx, l, r)
	switch {
	case errors.Is(err, errLeasesClosed):
		return false, err
	case err != nil:
		return p.outage(err, true), nil
	case !ok || !r.UserCapped():
		return ok, nil
	}
	// The budget is held: only the user's window is left to ask for.
	r.Leased = true
	ok, err = p.reserve(ctx, r)
	if err != nil {
		ok = p.outage(err, false)
	}
	if !ok {
		p.giveBack(l, r)
	}
	return ok, nil
}

// reserve asks the backend to reserve r, unless it was found unavailable a
// moment ago (errDown).
func (p *Pacer) reserve(ctx context.Context, r *storage.CapRequest) (bool, error) {
	if p.down() {
		return false, errDown
	}
	live := ctx.Err() == nil
	ok, err := p.caps.Reserve(ctx, *r)
	if err == nil {
		p.answered(ctx, live, nil)
		return ok, nil
	}
	down := live && p.backendDown(ctx) // once: the clock and lastOK move
	p.failed(ctx, err, down)
	if ctx.Err() != nil && !down {
		return false, errLate
	}
	return ok, err
}

// errLate is a reservation that failed because its decision was over (its
// deadline passed or its client went away) before the backend answered,
// while the backend went on answering others: an overloaded process, not
// an outage. The ad is refused whatever the outage policy: served, it would
// go uncounted, past a frequency cap the backend was holding.
var errLate = errors.New("the decision was over before its reservation was answered")

// down reports whether the backend is not to be asked now (a call failed
// with Unavailable less than ProbeInterval ago), counting the decision's
// call as failed.
func (p *Pacer) down() bool {
	if p.resting() {
		p.errs.Add(1)
		return true
	}
	return false
}

// resting reports whether the backend is not to be asked now.
func (p *Pacer) resting() bool {
	until := p.downUntil.Load()
	if until == 0 { // never found down, or the last rest is over: no clock to read
		return false
	}
	if time.Now().UnixNano() < until {
		return true
	}
	p.downUntil.CompareAndSwap(until, 0)
	return false
}

// answered notes how a call to the backend went: live says whether its
// context was still live when it was made.
func (p *Pacer) answered(ctx context.Context, live bool, err error) {
	if err != nil {
		p.failed(ctx, err, live && p.backendDown(ctx))
		return
	}
	if now := time.Now().UnixNano(); now-p.lastOK.Load() > int64(time.Millisecond) {
		p.lastOK.Store(now)
	}
}

// stallWindow is how long the backend must have answered no reservation
// before one that ran out of time counts as an outage.
const stallWindow = 250 * time.Millisecond

// backendDown tells whether a reservation that failed after it was asked
// in time says the backend cannot answer. One whose client went away says
// nothing. One that ran out of time while the backend went on answering
// others says this process is slow (both cores busy, requests queued), not
// the backend: taking that for an outage refused every budgeted campaign
// and made each decision search further, feeding the overload. Any other
// failure (a refused or broken connection) is an outage at once.
func (p *Pacer) backendDown(ctx context.Context) bool {
	switch ctx.Err() {
	case nil:
		return true
	case context.Canceled:
		return false
	}
	return time.Now().UnixNano()-p.lastOK.Load() > int64(stallWindow)
}

// outage decides for an ad whose reservation failed with err: refused when
// its decision was over (errLate), else as the policy says for an ad whose
// caps cannot be checked; budget says whether a delivery cap is among them
// (not when the ad's budget is held in a lease).
func (p *Pacer) outage(err error, budget bool) bool {
	if errors.Is(err, errLate) {
		return false
	}
	switch p.policy {
	case failOpen:
		return true
	case failClosed:
		return false
	}
	return !budget
}

// Errors reports how many reservations failed, or were not tried while the
// backend was found unavailable, since the start.
func (p *Pacer) Errors() uint64 { return p.errs.Load() }

// failed counts and logs a failed reservation; backendDown says whether it
// tells that the backend cannot answer.
func (p *Pacer) failed(ctx context.Context, err error, backendDown bool) {
	n := p.errs.Add(1)
	now := time.Now().UnixNano()
	if backendDown && campaigns.ErrorCode(err) == campaigns.Unavailable {
		p.downUntil.Store(now + int64(ProbeInterval))
	}
	last := p.lastLog.Load()
	if now-last < int64(10*time.Second) || !p.lastLog.CompareAndSwap(last, now) {
		return
	}
	p.log.LogAttrs(ctx, slog.LevelError, "caps unavailable",
		slog.String("policy", p.policy.String()), slog.Uint64("errors_total", n), slog.String("err", err.Error()))
}

// businessDay is a calendar day in the business time zone: its name and the
// instants it starts and ends (a day is not always 24 hours long).
type businessDay struct {
	name       string
	start, end time.Time
}

// businessDay returns the day of now, computed once a day and shared.
func (p *Pacer) businessDay(now time.Time) *businessDay {
	if d := p.day.Load(); d != nil && !now.Before(d.start) && now.Before(d.end) {
		return d
	}
	t := now.In(p.loc)
	y, m, dd := t.Date()
	d := &businessDay{
		name:  t.Format(time.DateOnly),
		start: midnight(y, m, dd, p.loc),
		end:   midnight(y, m, dd+1, p.loc),
	}
	// Only move forward: a late request from yesterday must not evict today.
	if cur := p.day.Load(); cur == nil || d.start.After(cur.start) {
		p.day.CompareAndSwap(cur, d)
	}
	return d
}

// midnight returns the instant day y-m-d begins in loc. Where the clocks
// skip midnight (America/Santiago, America/Havana, …) time.Date names an
// instant of the day before; the day then begins at the transition. Where
// they fall back across it (01:00 to 00:00: Asia/Amman in 2008), midnight
// comes twice and time.Date may name the second, at the transition; the day
// began at the first, the offsets' difference earlier.
func midnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if t.Day() != time.Date(y, m, d, 12, 0, 0, 0, loc).Day() {
		_, t = t.ZoneBounds()
	}
	if start, _ := t.ZoneBounds(); start.Equal(t) {
		_, before := t.Add(-time.Nanosecond).Zone()
		if _, after := t.Zone(); before > after {
			t = t.Add(-time.Duration(before-after) * time.Second)
		}
	}
	return t
}
