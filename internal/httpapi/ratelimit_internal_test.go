package httpapi

import (
	"fmt"
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
	if ok, _ := l.allow(pub); !ok {
		t.Fatal("first call refused")
	}
	ok, wait := l.allow(pub)
	if ok || wait != 2 {
		t.Fatalf("second call: ok=%v wait=%d, want refused, 2 s", ok, wait)
	}
	clock.t = clock.t.Add(1500 * time.Millisecond)
	if ok, wait := l.allow(pub); ok || wait != 1 {
		t.Fatalf("after 1.5 s: ok=%v wait=%d, want refused, 1 s (rounded up)", ok, wait)
	}
	clock.t = clock.t.Add(500 * time.Millisecond)
	if ok, _ := l.allow(pub); !ok {
		t.Fatal("refused after the refill")
	}
	// Management roles use the other rate.
	adv := &auth.Principal{ID: "adv_1", Role: campaigns.Advertiser}
	if ok, _ := l.allow(adv); !ok {
		t.Fatal("advertiser refused")
	}
	// A rate of 0 is unlimited and keeps no bucket.
	u := newLimiter(0, 0, 0, 0, clock.now)
	for range 100 {
		if ok, _ := u.allow(pub); !ok {
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
		l.allow(&auth.Principal{ID: fmt.Sprintf("adv_%d", i), Role: campaigns.Advertiser})
		if l.size() > max {
			t.Fatalf("after %d accounts the limiter keeps %d buckets, max %d", i+1, l.size(), max)
		}
	}
	// Once idle long enough to be full again, buckets are dropped first,
	// losing nothing: the next insert frees them all.
	clock.t = clock.t.Add(time.Minute)
	l.allow(&auth.Principal{ID: "fresh", Role: campaigns.Advertiser})
	if l.size() != 1 {
		t.Fatalf("after idling, %d buckets kept, want 1", l.size())
	}
}
