package pacing

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// Leases: how a replica serves budgeted campaigns without a round trip to
// the shared counters for every ad (see Leases).
const (
	// leaseSpan is how long a lease should last at the rate its campaign
	// was served lately: a campaign asks the counters about once a span.
	leaseSpan = 10 * time.Second
	// maxLease bounds a lease, and fairShare its part of what the limits
	// leave: near a limit leases shrink to one ad, so that replicas share
	// the last ads exactly.
	maxLease  = 1000
	fairShare = 16
	// exhaustedRecheck is how long a replica refuses a campaign whose
	// limit was reached before it asks again (another replica may return
	// ads meanwhile).
	exhaustedRecheck = 250 * time.Millisecond
	// returnIdle is how long a lease may go unused before its ads are
	// given back, and returnInterval how often that is looked at.
	returnIdle     = 10 * time.Second
	returnInterval = time.Second
	// forgetIdle is how long an empty lease is kept.
	forgetIdle = time.Hour
	// maxPendingReturns bounds the returns kept for retry while the
	// counters cannot be reached, and retryReturnsFor how long one is
	// retried: well within storage.GiverTTL, the time the backend keeps
	// the number of a giver's last return, so that a retry of one that
	// landed (its reply lost) takes nothing back twice.
	maxPendingReturns = 100_000
	retryReturnsFor   = storage.GiverTTL / 2
)

// errDown says the backend was not asked: it was found unavailable a
// moment ago.
var errDown = errors.New("caps backend unavailable")

// leases are a Pacer's leases, by campaign.
type leases struct {
	mu sync.RWMutex
	m  map[string]*lease

	// giver names this Pacer's give-backs and leases to the backend; seq
	// numbers its give-backs (storage.GiveBack), leaseSeq its leases
	// (storage.LeaseID).
	giver    string
	seq      atomic.Uint64
	leaseSeq atomic.Uint64

	pmu     sync.Mutex
	pending []leaseReturn // to give back, from leases whose day or limits changed

	flights sync.WaitGroup // leases asked for, not answered yet

	stop chan struct{}
	done chan struct{}
}

// lease is the ads of one campaign a replica holds. Times are Unix ns of
// the wall clock.
type lease struct {
	mu           sync.Mutex
	campaign     string
	day          string // the business day they were counted on
	total, daily int64  // the limits they were granted under
	left         int64  // ads held, not served yet
	size         int64  // ads the last lease granted
	at           int64  // when it was granted
	remaining    int64  // what the limits left after it
	lastUse      int64
	recheck      int64        // the limits were reached: do not ask before
	gone         bool         // forgotten: no longer in leases.m
	flight       *leaseFlight // a lease asked for, not answered yet
	// lost is a lease asked for that failed and may have happened (its
	// reply lost): it is asked for again, under its number, before any
	// other, so that what it counted, if it did, is held (storage.LeaseID).
	lost *leaseAsk
}

// leaseAsk is a lease to ask the backend for: the request (no user), the
// ads wanted, and its number; since is when it was first asked for.
type leaseAsk struct {
	r     storage.CapRequest
	want  int64
	seq   uint64
	since time.Time
}

// leaseReturn is a give-back of ads: seq numbers it to the backend, which
// applies it once however often it is sent (storage.GiveBack); since is
// when it was made.
type leaseReturn struct {
	campaign, day string
	n             int64
	seq           uint64
	since         time.Time
	// tried says it was sent and failed, not certainly unapplied
	// (storage.ErrNotApplied): it may have happened.
	tried bool
}

// newReturn makes a give-back, numbered after every one before it. Give-
// backs are numbered under pmu, as returnLeases takes the queue: every one
// numbered before a round takes the queue is in that round (queued, or
// the round's own), and every one numbered after is numbered above all of
// the round's, so that no round sends a number above one left behind
// (which the backend would then skip).
func (ls *leases) newReturn(campaign, day string, n int64) leaseReturn {
	ls.pmu.Lock()
	defer ls.pmu.Unlock()
	return ls.numbered(campaign, day, n)
}

func (ls *leases) numbered(campaign, day string, n int64) leaseReturn {
	return leaseReturn{campaign: campaign, day: day, n: n, seq: ls.seq.Add(1), since: time.Now()}
}

// laterNew makes a give-back and queues it for the next return round,
// numbered and queued at once (see newReturn).
func (ls *leases) laterNew(campaign, day string, n int64) {
	ls.pmu.Lock()
	defer ls.pmu.Unlock()
	r := ls.numbered(campaign, day, n)
	if len(ls.pending) < maxPendingReturns {
		ls.pending = append(ls.pending, r)
	}
}

func (ls *leases) giveBack(r leaseReturn) storage.GiveBack {
	return storage.GiveBack{By: ls.giver, Seq: r.seq}
}

func newLeases() *leases {
	return &leases{m: make(map[string]*lease), giver: storage.NewGiver(), stop: make(chan struct{}), done: make(chan struct{})}
}

// of returns the lease of a campaign, creating it.
func (ls *leases) of(id string) *lease {
	ls.mu.RLock()
	l := ls.m[id]
	ls.mu.RUnlock()
	if l != nil {
		return l
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l = ls.m[id]; l == nil {
		l = &lease{campaign: id}
		ls.m[id] = l
	}
	return l
}

// stopping reports whether Close has stopped the return loop: a round
// then ends without more round trips, which Close, waiting for the round,
// makes within its own time.
func (ls *leases) stopping() bool {
	select {
	case <-ls.stop:
		return true
	default:
		return false
	}
}

// later queues ads to give back at the next return round.
func (ls *leases) later(r leaseReturn) {
	ls.pmu.Lock()
	if len(ls.pending) < maxPendingReturns {
		ls.pending = append(ls.pending, r)
	}
	ls.pmu.Unlock()
}

// take takes one ad of r's campaign from its lease, leasing more from the
// backend when it holds none. It reports false when the limits are
// reached, and the backend's error (or errDown) when it holds none and
// cannot lease; errLeasesClosed once the Pacer is closed.
//
// A lease is asked for by a flight that does not end with the decision
// that started it: a reply that comes after the decision's deadline still
// lands in the lease (a lease Redis granted and no replica held would be
// ads counted and never served). Decisions that find a flight out wait for
// it, within their own deadline, rather than ask again.
func (p *Pacer) take(ctx context.Context, l *lease, r *storage.CapRequest) (bool, error) {
	for {
		now := time.Now().UnixNano()
		l.mu.Lock()
		for l.gone { // forgotten since it was looked up: leases must be in the map, to be returned
			l.mu.Unlock()
			l = p.leases.of(r.CampaignID)
			l.mu.Lock()
		}
		if p.closed.Load() {
			l.mu.Unlock()
			return false, errLeasesClosed
		}
		if l.flight == nil && !l.heldFor(r) {
			// A new business day, or the advertiser changed the budget:
			// what is held was counted against the old ones.
			if l.left > 0 {
				p.leases.laterNew(l.campaign, l.day, l.left)
			}
			l.day, l.total, l.daily = r.Day, r.TotalLimit, r.DailyLimit
			l.left, l.size, l.at, l.remaining, l.recheck = 0, 0, 0, 0, 0
		}
		l.lastUse = now
		if l.left > 0 && l.heldFor(r) {
			l.left--
			l.mu.Unlock()
			return true, nil
		}
		f := l.flight
		if f == nil {
			if now < l.recheck {
				l.mu.Unlock()
				return false, nil
			}
			if p.down() {
				l.mu.Unlock()
				return false, errDown
			}
			a := p.ask(l, r, now)
			f = &leaseFlight{done: make(chan struct{}), again: a == l.lost}
			l.flight = f
			p.leases.flights.Add(1)
			go p.fly(l, f, a, leaseTimeout)
		}
		l.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			err := campaigns.Errorf(campaigns.Unavailable, "lease: %v", ctx.Err())
			down := p.backendDown(ctx)
			p.failed(ctx, err, down)
			if !down {
				return false, errLate
			}
			return false, err
		}
		if f.err != nil {
			return false, f.err
		}
		if f.granted == 0 && !f.again {
			return false, nil // the limits are reached
		}
		// Take one of the ads granted, unless other decisions took them
		// all, or ask anew after a lost lease asked for again (which may
		// have been for another day or budget).
	}
}

// ask returns the lease to ask for next for r: the lost one, if any, else
// a new one. Callers hold l.mu.
func (p *Pacer) ask(l *lease, r *storage.CapRequest, now int64) *leaseAsk {
	if a := p.lostToAsk(l); a != nil {
		return a
	}
	lr := *r // a lease counts nothing per user
	lr.UID, lr.UserLimit, lr.UserPeriod = "", 0, 0
	return &leaseAsk{r: lr, want: l.want(now), seq: p.leases.leaseSeq.Add(1), since: time.Now()}
}

// lostToAsk returns l's lost lease, to ask for again, unless there is none
// or retryReturnsFor has passed since it was first asked for: then the
// backend may have forgotten its number, and it is dropped (logged).
// Callers hold l.mu.
func (p *Pacer) lostToAsk(l *lease) *leaseAsk {
	a := l.lost
	if a != nil && time.Since(a.since) >= retryReturnsFor {
		l.lost = nil
		p.notRelet(a)
		return nil
	}
	return a
}

// notRelet logs a lost lease given up: the backend may have forgotten its
// number, and what it counted, if it did, stays counted.
func (p *Pacer) notRelet(a *leaseAsk) {
	p.log.LogAttrs(context.Background(), slog.LevelWarn, "a lost lease not asked for again within its window: what it counted, if it did, stays counted as served",
		slog.String("campaign", a.r.CampaignID), slog.Int64("ads_asked", a.want))
}

// heldFor reports whether what l holds was counted against r's day and
// limits. Callers hold l.mu.
func (l *lease) heldFor(r *storage.CapRequest) bool {
	return l.day == r.Day && l.total == r.TotalLimit && l.daily == r.DailyLimit
}

// leaseFlight is a lease asked for and not answered yet; again says it is
// a lost one asked for again.
type leaseFlight struct {
	done    chan struct{} // closed when granted and err are set
	again   bool
	granted int64
	err     error
}

// leaseTimeout bounds a lease's round trip, whatever the decisions waiting
// for it.
const leaseTimeout = 5 * time.Second

// errLeasesClosed says the Pacer was closed: reserve each ad alone.
var errLeasesClosed = errors.New("pacer closed: leases given back")

// fly asks the backend for the lease a for l, within timeout, and puts
// what it grants in l (or back in the queue of returns, if l moved to
// another day or budget meanwhile). A lease that fails may have happened:
// l keeps it, to ask for it again under its number.
func (p *Pacer) fly(l *lease, f *leaseFlight, a *leaseAsk, timeout time.Duration) {
	defer p.leases.flights.Done()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	g, remaining, err := p.caps.Lease(ctx, a.r, a.want, storage.LeaseID{By: p.leases.giver, Seq: a.seq})
	p.answered(ctx, true, err) // before cancel, which would make any failure look like a client gone
	cancel()
	now := time.Now().UnixNano()
	l.mu.Lock()
	l.lost = nil
	switch {
	case err != nil:
		// One that certainly did not happen is asked for anew, for the
		// day and limits of the decision that asks; unless it was a lost
		// one asked for again, which may have happened the first time.
		if campaigns.ErrorCode(err) != campaigns.Invalid && (f.again || !errors.Is(err, storage.ErrNotApplied)) {
			l.lost = a
		}
	case l.gone || !l.heldFor(&a.r):
		if g > 0 {
			p.leases.laterNew(l.campaign, a.r.Day, g)
		}
	case g == 0:
		// The limits are reached, unless this was a lost lease asked for
		// again, which grants what it granted then (nothing) whatever the
		// limits leave now.
		if remaining == 0 {
			l.recheck = now + int64(exhaustedRecheck)
		}
	default:
		l.left += g
		l.size, l.at, l.remaining = g, now, remaining
	}
	l.flight = nil
	l.mu.Unlock()
	f.granted, f.err = g, err
	close(f.done)
}

// want is how many ads to lease at now: enough for leaseSpan at the rate
// the last lease went, growing at most fourfold, within maxLease and the
// fair share of what the limits left.
func (l *lease) want(now int64) int64 {
	if l.size == 0 {
		return 1
	}
	w := l.size * int64(leaseSpan) / max(now-l.at, 1)
	return max(min(w, 4*l.size, maxLease, l.remaining/fairShare), 1)
}

// giveBack puts back an ad taken from l for r and not served (its user's
// cap refused it), if the lease still holds r's day and limits: a lease
// renewed meanwhile under a lowered budget must not take back an ad
// counted under the old one, or the campaign could serve one past the new.
func (p *Pacer) giveBack(l *lease, r *storage.CapRequest) {
	day := r.Day
	l.mu.Lock()
	closed := p.closed.Load() // under l.mu, as Close's sweep of l reads it
	if l.heldFor(r) && !l.gone && !closed {
		l.left++
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	if closed { // Close gives back what the leases held: this one now, without holding l
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// Under a giver of its own, sent once: numbered by the Pacer's
		// giver, it could reach the backend before a give-back of the
		// same campaign that Close numbered earlier and has not sent yet,
		// which the backend would then skip as sent again (storage.GiveBack),
		// leaving the ads the lease held counted as served.
		_ = p.caps.Return(ctx, l.campaign, day, 1, storage.GiveBack{By: storage.NewGiver(), Seq: 1})
		return
	}
	p.leases.laterNew(l.campaign, day, 1)
}

// returnLoop gives back, every returnInterval, the ads of leases unused for
// returnIdle and those queued by later, until Close.
func (p *Pacer) returnLoop() {
	defer close(p.leases.done)
	t := time.NewTicker(returnInterval)
	defer t.Stop()
	for {
		select {
		case <-p.leases.stop:
			return
		case <-t.C:
		}
		p.returnLeases(time.Now().Add(-returnIdle), false)
	}
}

// closeReturnsFor bounds what Close spends asking again for lost leases
// and giving back what the leases hold, so that a shutdown while the
// backend hangs ends in time (docker-compose.yml's stop_grace_period
// counts on it); what is left then stays counted as served.
var closeReturnsFor = 5 * time.Second

// returnTimeout bounds one give-back's round trip.
const returnTimeout = 2 * time.Second

// returnLeases gives back the ads of leases unused since before idle, and
// those queued, and forgets empty leases unused for forgetIdle. A lease in
// use is skipped, unless all (Close) says to wait for it. A return that
// fails, and those not tried because the backend is down, wait for the
// next round (see below); Close has no next round, and tries each return
// once, within closeReturnsFor. Lost leases of the leases it gives back
// are asked for again first (relet). It reports the first error.
func (p *Pacer) returnLeases(idle time.Time, all bool) error {
	ls := p.leases
	var (
		back    []leaseReturn
		forget  []string
		cut     = idle.UnixNano()
		old     = time.Now().Add(-forgetIdle).UnixNano()
		closeBy time.Time // Close's deadline; zero in a round
	)
	if all {
		closeBy = time.Now().Add(closeReturnsFor)
	}
	reletErr := p.relet(cut, closeBy)
	ls.mu.RLock()
	for id, l := range ls.m {
		if !l.lockUnlessInUse(all) {
			continue // in use: not idle
		}
		if l.left > 0 && l.lastUse < cut {
			back = append(back, ls.newReturn(id, l.day, l.left))
			l.left = 0
		}
		if l.left == 0 && l.flight == nil && l.lost == nil && l.lastUse < old {
			forget = append(forget, id)
		}
		l.mu.Unlock()
	}
	ls.mu.RUnlock()
	if len(forget) > 0 {
		ls.mu.Lock()
		for _, id := range forget {
			if l := ls.m[id]; l != nil {
				l.mu.Lock()
				if l.left == 0 && l.flight == nil && l.lost == nil && l.lastUse < old {
					delete(ls.m, id)
					l.gone = true
				}
				l.mu.Unlock()
			}
		}
		ls.mu.Unlock()
	}
	ls.pmu.Lock()
	back = append(back, ls.pending...)
	ls.pending = nil
	ls.pmu.Unlock()
	// In the order they were made: the backend skips a give-back numbered
	// below one of the campaign's it has applied, and the loop below sends
	// none after one that fails.
	slices.SortFunc(back, func(a, b leaseReturn) int { return cmp.Compare(a.seq, b.seq) })

	// A return that failed may still have happened (its reply lost): it
	// is sent again under its number, which the backend applies once, at
	// the next rounds, for up to retryReturnsFor. Dropped, each would keep a
	// lease's ads counted as served for good, a campaign's total budget
	// that much short. Returns not tried yet (the backend was found down)
	// wait for the next round too. Close tries every return once, failed
	// ones before it or not, while its time lasts, and logs those it could
	// not make together.
	var (
		first         error
		unmade, unads int64
		now           = time.Now()
	)
	for i, r := range back {
		// One that may have happened is not sent once retryReturnsFor has
		// passed, even if it waited unsent (the backend resting, an
		// earlier one failing): the backend may have forgotten its
		// giver's number by GiverTTL, and would take its ads back twice.
		if r.tried && now.Sub(r.since) >= retryReturnsFor {
			p.notReturned(r, -1, "a failed give-back not confirmed within its retry window")
			continue
		}
		timeout := returnTimeout
		if all {
			// Close (all) has no next round: it tries each return once,
			// even while the backend rests after a failure a moment ago.
			if timeout = min(timeout, time.Until(closeBy)); timeout <= 0 {
				first = cmp.Or(first, error(errCloseTime))
				unmade, unads = unmade+1, unads+r.n
				continue
			}
		} else if first != nil || p.resting() || ls.stopping() { // not a decision: Errors does not count it
			ls.later(r) // Close takes the queue once the round ends
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := p.caps.Return(ctx, r.campaign, r.day, r.n, ls.giveBack(r))
		p.answered(ctx, true, err) // before cancel, as in fly
		cancel()
		switch {
		case err == nil:
		case all:
			first = cmp.Or(first, err)
			unmade, unads = unmade+1, unads+r.n
		case campaigns.ErrorCode(err) != campaigns.Invalid && now.Sub(r.since) < retryReturnsFor:
			first = err
			r.tried = r.tried || !errors.Is(err, storage.ErrNotApplied)
			ls.later(r)
		default:
			first = err
			p.notReturned(r, len(back)-i-1, err.Error())
		}
	}
	if unmade > 0 {
		p.log.LogAttrs(context.Background(), slog.LevelWarn, "leased ads not given back at shutdown: they stay counted as served",
			slog.Int64("give_backs", unmade), slog.Int64("ads", unads), slog.String("err", first.Error()))
	}
	return cmp.Or(first, reletErr)
}

// lockUnlessInUse locks l; with all unset (a round, not Close), only if no
// one holds it, reporting false then: a lease in use is not idle.
func (l *lease) lockUnlessInUse(all bool) bool {
	if all {
		l.mu.Lock()
		return true
	}
	return l.mu.TryLock()
}

// errCloseTime says Close's time for give-backs ran out (closeReturnsFor).
var errCloseTime = errors.New("shutdown's time for give-backs ran out")

// relet asks again for the lost leases (see lease.lost) of leases unused
// since before cut (all of them at Close, whose deadline closeBy is, zero
// in a round), so that what they counted, if they did, is held and given
// back with the rest: a campaign no longer served asks for no lease that
// would send them again. In a round, the backend failing, the rest wait
// for the next; resting, for one when it is not. Close asks for each once,
// while its time lasts. It reports the first error.
func (p *Pacer) relet(cut int64, closeBy time.Time) error {
	ls := p.leases
	all := !closeBy.IsZero()
	var (
		due   []*lease
		first error
	)
	ls.mu.RLock()
	for _, l := range ls.m {
		if !l.lockUnlessInUse(all) {
			continue // in use: its decisions ask for it
		}
		if l.lost != nil && l.flight == nil && l.lastUse < cut {
			due = append(due, l)
		}
		l.mu.Unlock()
	}
	ls.mu.RUnlock()
	if all {
		defer func() { p.lostAtClose(due, first) }()
	}
	for _, l := range due {
		timeout := leaseTimeout
		if all {
			if timeout = min(timeout, time.Until(closeBy)); timeout <= 0 {
				first = cmp.Or(first, error(errCloseTime))
				return first
			}
		} else if p.resting() || ls.stopping() { // Close asks for the rest
			return nil
		}
		l.mu.Lock()
		if l.flight != nil || l.lastUse >= cut { // asked for again meanwhile, or in use
			l.mu.Unlock()
			continue
		}
		a := p.lostToAsk(l)
		if a == nil {
			l.mu.Unlock()
			continue
		}
		f := &leaseFlight{done: make(chan struct{}), again: true}
		l.flight = f
		ls.flights.Add(1)
		l.mu.Unlock()
		p.fly(l, f, a, timeout)
		if f.err != nil {
			if !all {
				return f.err
			}
			first = cmp.Or(first, f.err)
		}
	}
	return first
}

// lostAtClose logs, once, the lost leases of due that Close could not ask
// for again (for why).
func (p *Pacer) lostAtClose(due []*lease, why error) {
	var n, ads int64
	for _, l := range due {
		l.mu.Lock()
		if l.lost != nil {
			n, ads = n+1, ads+l.lost.want
		}
		l.mu.Unlock()
	}
	if n > 0 {
		p.log.LogAttrs(context.Background(), slog.LevelWarn, "lost leases not asked for again at shutdown: what they counted, if they did, stays counted as served",
			slog.Int64("leases", n), slog.Int64("ads_asked", ads), slog.Any("err", why))
	}
}

// notReturned logs the give-back r given up for why; waiting, when not
// negative, is how many returns of the round came after it.
func (p *Pacer) notReturned(r leaseReturn, waiting int, why string) {
	attrs := []slog.Attr{slog.String("campaign", r.campaign), slog.Int64("ads", r.n)}
	if waiting >= 0 {
		attrs = append(attrs, slog.Int("returns_waiting", waiting))
	}
	p.log.LogAttrs(context.Background(), slog.LevelWarn, "leased ads not returned: they stay counted as served", append(attrs, slog.String("err", why))...)
}
