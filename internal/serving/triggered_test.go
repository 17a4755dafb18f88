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
	for i := range 20 * triggeredShards * triggeredPerShard / 10 {
		c.put("q"+strconv.Itoa(i), []uint32{uint32(i)})
	}
	for i := range c.shards {
		if n := len(c.shards[i].m); n > triggeredPerShard {
			t.Fatalf("shard %d holds %d queries", i, n)
		}
	}
	ranks, ok := c.get("q32767")
	if ok && (len(ranks) != 1 || ranks[0] != 32767) {
		t.Fatalf("q32767 → %v", ranks)
	}
	long := strings.Repeat("居酒屋", 50) // 450 bytes
	c.put(long, []uint32{1})
	if _, ok := c.get(long); ok {
		t.Fatal("a query longer than triggeredMaxQuery was kept")
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
	ids := func(ranks []uint32) string {
		var b []string
		for _, r := range ranks {
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
