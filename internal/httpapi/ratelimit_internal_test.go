package httpapi

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestLimiterRefillsAndSaysWhen(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newLimiter(0.5, 100, 1, 0, clock.now) // publishers: one call every 2 s
	pub := &auth.Principal{ID: "pub_1", Role: campaigns.Publisher}
	if ok, _ := l.allow(pub, true); !ok {
		t.Fatal("first call refused")
	}
	ok, wait := l.allow(pub, true)
	if ok || wait != 2 {
		t.Fatalf("second call: ok=%v wait=%d, want refused, 2 s", ok, wait)
	}
	clock.t = clock.t.Add(1500 * time.Millisecond)
	if ok, wait := l.allow(pub, true); ok || wait != 1 {
		t.Fatalf("after 1.5 s: ok=%v wait=%d, want refused, 1 s (rounded up)", ok, wait)
	}
	clock.t = clock.t.Add(500 * time.Millisecond)
	if ok, _ := l.allow(pub, true); !ok {
		t.Fatal("refused after the refill")
	}
	// Management roles use the other rate.
	adv := &auth.Principal{ID: "adv_1", Role: campaigns.Advertiser}
	if ok, _ := l.allow(adv, false); !ok {
		t.Fatal("advertiser refused")
	}
	// A rate of 0 is unlimited and keeps no bucket.
	u := newLimiter(0, 0, 0, 0, clock.now)
	for range 100 {
		if ok, _ := u.allow(pub, true); !ok {
			t.Fatal("unlimited refused")
		}
	}
	if u.size() != 0 {
		t.Fatalf("unlimited keeps %d buckets", u.size())
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	const max = 100
	l := newLimiter(1, 1, 5, max, clock.now)
	// 10,000 accounts each in use (their buckets are not full): the
	// limiter never keeps more than max.
	for i := range 10_000 {
		l.allow(&auth.Principal{ID: fmt.Sprintf("adv_%d", i), Role: campaigns.Advertiser}, false)
		if l.size() > max {
			t.Fatalf("after %d accounts the limiter keeps %d buckets, max %d", i+1, l.size(), max)
		}
	}
	// Once idle long enough to be full again, buckets are dropped first,
	// losing nothing: the next insert frees them all.
	clock.t = clock.t.Add(time.Minute)
	l.allow(&auth.Principal{ID: "fresh", Role: campaigns.Advertiser}, false)
	if l.size() != 1 {
		t.Fatalf("after idling, %d buckets kept, want 1", l.size())
	}
}

// TestBucketUnderContention: goroutines taking from one bucket at once,
// at a clock that does not move, get exactly its burst between them.
func TestBucketUnderContention(t *testing.T) {
	const burst, workers, tries = 1000, 8, 500
	b := newBucket(0.001, burst)
	var got atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tries {
				if ok, _ := b.take(5e9); ok {
					got.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got.Load() != burst {
		t.Fatalf("%d tokens taken from a bucket of %d", got.Load(), burst)
	}
	// A token comes back every interval (1,000 s at 0.001/s), and not
	// before.
	if ok, wait := b.take(5e9 + 999e9); ok || wait != 1e9 {
		t.Fatalf("1 s before the first token is back: ok=%v wait=%v ns, want refused, 1e9", ok, wait)
	}
	if ok, _ := b.take(5e9 + 1000e9); !ok {
		t.Fatal("refused once a token is back")
	}
}

// TestBucketExtremes: rates and bursts at the ends of what the
// configuration accepts neither overflow nor grant what they should not.
func TestBucketExtremes(t *testing.T) {
	slow := newBucket(1e-30, 1<<40) // slower than the clamp, burst past the span's
	for i := range 3 {
		if ok, _ := slow.take(int64(i)); !ok {
			t.Fatalf("take %d from a huge bucket refused", i)
		}
	}
	if slow.span != maxSpan || slow.interval != maxInterval {
		t.Fatalf("interval %d span %d, want clamped to %d and %d", slow.interval, slow.span, int64(maxInterval), int64(maxSpan))
	}
	fast := newBucket(1e12, 1) // faster than the clock's grain: one token a nanosecond
	if ok, _ := fast.take(0); !ok {
		t.Fatal("first take refused")
	}
	if ok, _ := fast.take(0); ok {
		t.Fatal("a second token in the same nanosecond from a bucket of one")
	}
	if ok, _ := fast.take(1); !ok {
		t.Fatal("refused a nanosecond later")
	}
	empty := newBucket(1, 0)
	if ok, _ := empty.take(1e12); ok {
		t.Fatal("a bucket of no tokens granted one")
	}
}

// TestBucketTakesALateReadingAtTheLatest: a taker whose clock reading is
// older than one another taker has brought (its goroutine was descheduled
// between reading the clock and taking) is not refused for it.
func TestBucketTakesALateReadingAtTheLatest(t *testing.T) {
	b := newBucket(1e7, 200) // the load tests' rate: refills in 20 µs
	if ok, _ := b.take(1e9); !ok {
		t.Fatal("first take refused")
	}
	if ok, wait := b.take(1e9 - 1e6); !ok {
		t.Fatalf("a reading 1 ms older than the last refused (wait %d ns)", wait)
	}
	// The bucket still holds its burst at the latest reading, no more.
	n := 0
	for {
		if ok, _ := b.take(1e9 - 1e6); !ok {
			break
		}
		n++
	}
	if n != 198 {
		t.Fatalf("%d more tokens taken, want 198 of 200", n)
	}
}
