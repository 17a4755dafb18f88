package serving

import (
	"strconv"
	"strings"
	"testing"
)

// TestTriggeredCacheStaysBounded: however many distinct queries come, no
// shard holds more than triggeredPerShard, and a query too long to keep is
// still answered.
func TestTriggeredCacheStaysBounded(t *testing.T) {
	var c triggeredCache
	one := func(r uint32) triggeredSet {
		return triggeredSet{ranks: []uint32{r}, hot: []rankedCampaign{{offer: r}}}
	}
	for i := range 20 * triggeredShards * triggeredPerShard / 10 {
		c.put("q"+strconv.Itoa(i), one(uint32(i)))
	}
	checkShards := func(what string) {
		t.Helper()
		for i := range c.shards {
			sh := &c.shards[i]
			n, bytes := len(sh.m), 0
			for q, set := range sh.m {
				bytes += set.size(q)
			}
			if n > triggeredPerShard || bytes > triggeredShardBytes || bytes != sh.bytes {
				t.Fatalf("%s: shard %d holds %d queries, %d bytes (counted %d)", what, i, n, bytes, sh.bytes)
			}
		}
	}
	checkShards("many queries")
	set, ok := c.get("q32767")
	if ok && (len(set.ranks) != 1 || set.ranks[0] != 32767 || set.hot[0].offer != 32767) {
		t.Fatalf("q32767 → %+v", set)
	}
	long := strings.Repeat("居酒屋", 50) // 450 bytes
	c.put(long, one(1))
	if _, ok := c.get(long); ok {
		t.Fatal("a query longer than triggeredMaxQuery was kept")
	}
	// Queries that trigger thousands of campaigns fill a shard by bytes
	// long before they fill it by count.
	wide := triggeredSet{ranks: make([]uint32, 5000), hot: make([]rankedCampaign, 5000)}
	for i := range 200 {
		c.put("wide"+strconv.Itoa(i), wide)
		c.put("wide"+strconv.Itoa(i), wide) // again: counted once
	}
	checkShards("wide queries")
	huge := triggeredSet{ranks: make([]uint32, 40000), hot: make([]rankedCampaign, 40000)}
	c.put("huge", huge)
	if _, ok := c.get("huge"); ok {
		t.Fatal("a set larger than a shard was kept")
	}
}

// TestTriggeredMatchesTheIndex: the cached ranks are those the keyword
// index gives, the second time as the first, and a campaign change starts
// afresh.
func TestTriggeredMatchesTheIndex(t *testing.T) {
	ix := NewIndex()
	for i, kw := range []string{"居酒屋", "居酒屋", "カフェ", "居酒屋 ビール"} {
		c := campaign("c"+strconv.Itoa(i), "a1", "p0", 800, kw)
		c.Priority = i // c3 ranks first
		ix.PutCampaign(c)
	}
	var sc scratch
	snap := ix.Snapshot()
	ids := func(set triggeredSet) string {
		var b []string
		if len(set.hot) != len(set.ranks) {
			t.Fatalf("%d ranks, %d entries", len(set.ranks), len(set.hot))
		}
		for i, r := range set.ranks {
			if set.hot[i] != snap.ranked[r] {
				t.Fatalf("entry %d is not rank %d's: %+v, want %+v", i, r, set.hot[i], snap.ranked[r])
			}
			b = append(b, snap.byRank[r].ID)
		}
		return strings.Join(b, ",")
	}
	for range 2 { // a miss, then a hit
		if got := ids(snap.triggered("居酒屋 ビール", &sc)); got != "c3,c1,c0" {
			t.Fatalf("居酒屋 ビール triggers %s, want c3,c1,c0", got)
		}
		if got := ids(snap.triggered("歯医者", &sc)); got != "" {
			t.Fatalf("歯医者 triggers %s", got)
		}
	}
	c := campaign("c4", "a1", "p0", 800, "歯医者")
	ix.PutCampaign(c)
	snap = ix.Snapshot()
	if got := ids(snap.triggered("歯医者", &sc)); got != "c4" {
		t.Fatalf("after a campaign bids on 歯医者 it triggers %q", got)
	}
}
