package httpapi

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
)

// DefaultMaxRateLimited is how many accounts' buckets the limiter keeps
// before it drops idle ones.
const DefaultMaxRateLimited = 100_000

// limiter is a token bucket per account, with a rate and burst per role:
// one for publishers' decisions, one for management keys (admin, agency,
// advertiser). A publisher's other calls (its account, its keys, its
// reports) are management calls: they take the management rate, from a
// bucket of their own, so that neither kind of call can starve the other
// and the decision rate is no way around the management limit. An
// account's keys share its buckets, so a rotation with keep_old does not
// double the limit.
//
// Memory is bounded: past max buckets, full buckets are dropped (a full
// bucket is the same as a new one, so nothing is forgotten), and if every
// bucket is in use, arbitrary ones are, which at worst grants a burst
// early. Buckets exist only for authenticated accounts, so random keys
// cannot grow the map.
//
// Every decision takes a token from its publisher's bucket, so a bucket is
// shared by all of a publisher's traffic at once: it takes a token with one
// compare-and-swap (bucket), never a lock. A locked bucket
// (golang.org/x/time/rate's) was navad's most contended lock under a
// flat-out decision load, its waiters parked and woken by the kernel
// (BENCHMARKS.md, "HTTP, flat out", eighteenth session).
type limiter struct {
	publisher, management float64 // tokens a second; 0: unlimited
	burst                 int
	max                   int
	now                   func() time.Time
	epoch                 time.Time // buckets keep times as nanoseconds since

	buckets sync.Map // account ID → *bucket; read without a lock
	mu      sync.Mutex
	n       atomic.Int64
}

func newLimiter(publisher, management float64, burst, max int, now func() time.Time) *limiter {
	if max <= 0 {
		max = DefaultMaxRateLimited
	}
	if now == nil {
		now = time.Now
	}
	return &limiter{publisher: publisher, management: management, burst: burst, max: max, now: now, epoch: now()}
}

// bucket is a token bucket of burst tokens that refills one token every
// interval, kept as one number: the time at which it will be full again
// (the generic cell rate algorithm). Taking a token moves that time one
// interval later, and is refused when that would put it further ahead of
// now than the bucket holds. Safe for concurrent use, without a lock.
//
// A taker's clock reading can be stale by the time it takes: read, then
// the goroutine descheduled while others take. Against the time others
// have moved full to, a stale reading looks like a burst, and a bucket
// that refills in microseconds would refuse it. So each taker first brings
// the latest reading any taker has seen up to its own, and takes at that
// (as a locked bucket takes a late arrival at the last time it saw).
type bucket struct {
	interval int64 // nanoseconds a token takes to come back
	span     int64 // interval × burst: how far ahead of now full may lie
	full     atomic.Int64
	seen     atomic.Int64 // the latest clock reading of any taker
}

// maxInterval and maxSpan keep a bucket's arithmetic within int64: a rate
// slower than one token in 13 days is taken as that, and a bucket that
// would take more than 146 years to fill as one that takes that long.
const (
	maxInterval = 1 << 50
	maxSpan     = 1 << 62
)

func newBucket(perSecond float64, burst int) *bucket {
	interval := int64(math.Max(1, math.Min(maxInterval, math.Round(1e9/perSecond))))
	span := int64(maxSpan)
	if burst < 1 {
		span = 0
	} else if int64(burst) < maxSpan/interval {
		span = interval * int64(burst)
	}
	return &bucket{interval: interval, span: span}
}

// take takes a token at now (nanoseconds since the limiter's epoch). When
// there is none it returns false and the nanoseconds until there is one.
func (b *bucket) take(now int64) (bool, int64) {
	for seen := b.seen.Load(); now > seen && !b.seen.CompareAndSwap(seen, now); {
		seen = b.seen.Load()
	}
	for {
		// full before seen: whoever moved full had brought seen up to
		// the time it took at first. seen is at least now: the loop
		// above made it so, and it only grows.
		full := b.full.Load()
		t := b.seen.Load()
		next := max(full, t) + b.interval
		if over := next - t - b.span; over > 0 {
			return false, over
		}
		if b.full.CompareAndSwap(full, next) {
			return true, 0
		}
	}
}

// isFull reports whether the bucket holds all its tokens at now.
func (b *bucket) isFull(now int64) bool { return b.full.Load() <= now }

// allow takes a token from p's bucket for a call that is a decision or
// not. When there is none it returns false and the whole seconds until
// there is one, at least 1.
func (l *limiter) allow(p *auth.Principal, decision bool) (bool, int) {
	limit, id := l.management, p.ID
	if p.Role == campaigns.Publisher {
		if decision {
			limit = l.publisher
		} else {
			// Not the decisions' bucket: a NUL can be in no account ID.
			id = "\x00management:" + p.ID
		}
	}
	if limit <= 0 {
		return true, 0
	}
	b := l.bucket(id, limit)
	if ok, wait := b.take(l.sinceEpoch()); !ok {
		return false, max(1, int(math.Ceil(float64(wait)/1e9)))
	}
	return true, 0
}

// sinceEpoch returns the limiter's clock: nanoseconds since its epoch.
func (l *limiter) sinceEpoch() int64 { return int64(l.now().Sub(l.epoch)) }

func (l *limiter) bucket(id string, limit float64) *bucket {
	if b, ok := l.buckets.Load(id); ok {
		return b.(*bucket)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets.Load(id); ok {
		return b.(*bucket)
	}
	if int(l.n.Load()) >= l.max {
		l.shrink()
	}
	b := newBucket(limit, l.burst)
	l.buckets.Store(id, b)
	l.n.Add(1)
	return b
}

// shrink drops full buckets, then, if that freed less than a tenth of the
// room, arbitrary ones until it has. l.mu is held.
func (l *limiter) shrink() {
	now := l.sinceEpoch()
	target := int64(l.max - l.max/10 - 1)
	l.buckets.Range(func(k, v any) bool {
		if v.(*bucket).isFull(now) {
			l.buckets.Delete(k)
			l.n.Add(-1)
		}
		return true
	})
	l.buckets.Range(func(k, _ any) bool {
		if l.n.Load() <= target {
			return false
		}
		l.buckets.Delete(k)
		l.n.Add(-1)
		return true
	})
}

// size reports how many buckets are kept.
func (l *limiter) size() int { return int(l.n.Load()) }
