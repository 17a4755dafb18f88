package httpapi

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
)

// DefaultMaxRateLimited is how many accounts' buckets the limiter keeps
// before it drops idle ones.
const DefaultMaxRateLimited = 100_000

// limiter is a token bucket per account, with a rate and burst per role:
// one for publishers (decisions), one for management keys (admin, agency,
// advertiser). An account's keys share its bucket, so a rotation with
// keep_old does not double the limit.
//
// Memory is bounded: past max buckets, full buckets are dropped (a full
// bucket is the same as a new one, so nothing is forgotten), and if every
// bucket is in use, arbitrary ones are, which at worst grants a burst
// early. Buckets exist only for authenticated accounts, so random keys
// cannot grow the map.
type limiter struct {
	publisher, management rate.Limit // 0: unlimited
	burst                 int
	max                   int
	now                   func() time.Time

	buckets sync.Map // account ID → *rate.Limiter; read without a lock
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
	return &limiter{publisher: rate.Limit(publisher), management: rate.Limit(management), burst: burst, max: max, now: now}
}

// allow takes a token from p's bucket. When there is none it returns
// false and the whole seconds until there is one, at least 1.
func (l *limiter) allow(p *auth.Principal) (bool, int) {
	limit := l.management
	if p.Role == campaigns.Publisher {
		limit = l.publisher
	}
	if limit <= 0 {
		return true, 0
	}
	b := l.bucket(p.ID, limit)
	now := l.now()
	if b.AllowN(now, 1) {
		return true, 0
	}
	wait := (1 - b.TokensAt(now)) / float64(limit)
	return false, max(1, int(math.Ceil(wait)))
}

func (l *limiter) bucket(id string, limit rate.Limit) *rate.Limiter {
	if b, ok := l.buckets.Load(id); ok {
		return b.(*rate.Limiter)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets.Load(id); ok {
		return b.(*rate.Limiter)
	}
	if int(l.n.Load()) >= l.max {
		l.shrink()
	}
	b := rate.NewLimiter(limit, l.burst)
	l.buckets.Store(id, b)
	l.n.Add(1)
	return b
}

// shrink drops full buckets, then, if that freed less than a tenth of the
// room, arbitrary ones until it has. l.mu is held.
func (l *limiter) shrink() {
	now := l.now()
	target := int64(l.max - l.max/10 - 1)
	l.buckets.Range(func(k, v any) bool {
		if v.(*rate.Limiter).TokensAt(now) >= float64(l.burst) {
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
