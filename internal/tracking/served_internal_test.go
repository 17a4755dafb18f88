package tracking

import (
	"fmt"
	"testing"

	"github.com/navad/navad/internal/storage"
)

// TestServedRowsRecycled: the rows a flush wrote are cleared (no campaign
// or store strings kept alive) and become the array that rows fill after
// the next take, unless it is too small.
func TestServedRowsRecycled(t *testing.T) {
	var c servedCounter
	for i := range 1000 {
		c.add(storage.AggKey{CampaignID: "c", StoreID: fmt.Sprint("s", i)})
	}
	rows := c.take()
	if len(rows) != 1000 {
		t.Fatalf("took %d rows, want 1000", len(rows))
	}
	first := &rows[0]
	c.recycle(rows)
	if rows[999] != (storage.ServedCount{}) {
		t.Fatalf("recycled row %+v, want it cleared", rows[999])
	}
	// The rows served meanwhile went to the array take made; those served
	// after the next take go to the recycled one.
	c.add(storage.AggKey{CampaignID: "c", StoreID: "r"})
	if between := c.take(); len(between) != 1 || &between[0] == first {
		t.Fatalf("rows %+v served before the next take", between)
	}
	c.add(storage.AggKey{CampaignID: "c", StoreID: "s"})
	small := c.take()
	if &small[0] != first || small[0].Key.StoreID != "s" || len(small) != 1 {
		t.Fatalf("the next flush's rows %+v are not in the recycled array", small)
	}
	// A spare too small for the last flush's rows and a quarter more is
	// not used: rows would grow in the middle of a second.
	c.recycle(small[:1:1])
	for i := range 800 {
		c.add(storage.AggKey{CampaignID: "c", StoreID: fmt.Sprint("t", i)})
	}
	c.take()
	if next := c.take(); next != nil {
		t.Fatalf("rows %+v with nothing served", next)
	}
	if c.add(storage.AggKey{}); cap(c.rows) < 1000 {
		t.Fatalf("rows of cap %d after a flush of 800, want at least 1,000", cap(c.rows))
	}
}
