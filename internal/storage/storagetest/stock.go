package storagetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

var stockTests = []test{
	{name: "UnknownStoresRejected", run: testStockUnknownStores},
	{name: "LastReportWins", run: testStockLastReportWins},
	{name: "PerAdvertiser", run: testStockPerAdvertiser},
	{name: "EarlyStop", run: testStockEarlyStop},
	{name: "StaleRowsSkipped", run: testStockStaleRows},
}

func outRow(store, product string) campaigns.StockUpdate {
	return campaigns.StockUpdate{StoreID: store, ProductID: product, InStock: ptr(false)}
}

func inRow(store, product string) campaigns.StockUpdate {
	return campaigns.StockUpdate{StoreID: store, ProductID: product, InStock: ptr(true)}
}

func testStockUnknownStores(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutStores(ctx, "adv", []campaigns.Store{store("s1", "1"), store("s2", "2")}))
	must(t, c.PutStores(ctx, "adv2", []campaigns.Store{store("s9", "9")}))
	mustStock(t)(c.PutStock(ctx, "adv", []campaigns.StockUpdate{outRow("s2", "p0")}))

	tests := []struct {
		name     string
		give     []campaigns.StockUpdate
		wantRows map[int]string // row → store ID its message must name
	}{
		{
			name: "mixed",
			give: []campaigns.StockUpdate{
				outRow("s1", "p1"),     // 1 fine
				outRow("nope", "p1"),   // 2 unknown
				outRow("s2", "p1"),     // 3 fine
				outRow("s9", "p1"),     // 4 another advertiser's store
				inRow("s2", "p0"),      // 5 fine, would bring p0 back
				outRow("s1x", "p2"),    // 6 extension of a real ID
				outRow("nope", "p3"),   // 7 the same unknown store again
				outRow("s", "p1"),      // 8 prefix of a real ID
				outRow("s1", "p9"),     // 9 fine
				outRow("adv2", "p9"),   // 10 another advertiser's ID
				outRow("", "p1"),       // 11 empty
				outRow("s2", "p1-out"), // 12 fine
			},
			wantRows: map[int]string{2: "nope", 4: "s9", 6: "s1x", 7: "nope", 8: `"s"`, 10: "adv2", 11: `""`},
		},
		{
			name:     "only bad rows",
			give:     []campaigns.StockUpdate{outRow("gone", "p1")},
			wantRows: map[int]string{1: "gone"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.PutStock(ctx, "adv", tt.give)
			wantCode(t, err, campaigns.Invalid)
			var e *campaigns.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not a *campaigns.Error", err)
			}
			if len(e.Details) != len(tt.wantRows) {
				t.Fatalf("%d details %+v, want one for each of rows %v", len(e.Details), e.Details, tt.wantRows)
			}
			for _, d := range e.Details {
				id, ok := tt.wantRows[d.Row]
				if !ok {
					t.Fatalf("detail for row %d (%q), which is fine or does not exist", d.Row, d.Message)
				}
				if !strings.Contains(d.Message, id) {
					t.Fatalf("row %d message %q does not name store %s", d.Row, d.Message, id)
				}
				delete(tt.wantRows, d.Row) // each row once
			}
			// Nothing of the batch was written, not even its good rows.
			diff(t, "out of stock after a refused batch", collectOut(t, c, ""), []campaigns.StockKey{
				{AdvertiserID: "adv", StoreID: "s2", ProductID: "p0"},
			})
		})
	}
}

func testStockLastReportWins(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutStores(ctx, "adv", []campaigns.Store{store("s1", "1"), store("s2", "2")}))
	key := func(store, product string) campaigns.StockKey {
		return campaigns.StockKey{AdvertiserID: "adv", StoreID: store, ProductID: product}
	}
	qty := func(store, product string, q int64) campaigns.StockUpdate {
		return campaigns.StockUpdate{StoreID: store, ProductID: product, Quantity: &q}
	}
	steps := []struct {
		name string
		give []campaigns.StockUpdate
		want []campaigns.StockKey
	}{
		{"out", []campaigns.StockUpdate{outRow("s1", "p1")}, []campaigns.StockKey{key("s1", "p1")}},
		{"out again", []campaigns.StockUpdate{outRow("s1", "p1")}, []campaigns.StockKey{key("s1", "p1")}},
		{"another product out", []campaigns.StockUpdate{outRow("s1", "p2"), outRow("s2", "p1")}, []campaigns.StockKey{key("s1", "p1"), key("s1", "p2"), key("s2", "p1")}},
		{"back in", []campaigns.StockUpdate{inRow("s1", "p1")}, []campaigns.StockKey{key("s1", "p2"), key("s2", "p1")}},
		{"in when never out", []campaigns.StockUpdate{inRow("s2", "p7")}, []campaigns.StockKey{key("s1", "p2"), key("s2", "p1")}},
		{"out then in in one batch", []campaigns.StockUpdate{outRow("s1", "p3"), inRow("s1", "p3")}, []campaigns.StockKey{key("s1", "p2"), key("s2", "p1")}},
		{"in then out in one batch", []campaigns.StockUpdate{inRow("s1", "p2"), outRow("s1", "p2")}, []campaigns.StockKey{key("s1", "p2"), key("s2", "p1")}},
		{"quantity zero is out", []campaigns.StockUpdate{qty("s1", "p1", 0)}, []campaigns.StockKey{key("s1", "p1"), key("s1", "p2"), key("s2", "p1")}},
		{"positive quantity is in", []campaigns.StockUpdate{qty("s1", "p1", 5), qty("s2", "p1", 1)}, []campaigns.StockKey{key("s1", "p2")}},
		{"in_stock wins over quantity", []campaigns.StockUpdate{{StoreID: "s1", ProductID: "p2", InStock: ptr(true), Quantity: ptr[int64](0)}}, nil},
		{"in_stock false wins over quantity", []campaigns.StockUpdate{{StoreID: "s2", ProductID: "p2", InStock: ptr(false), Quantity: ptr[int64](9)}}, []campaigns.StockKey{key("s2", "p2")}},
		{"empty batch changes nothing", nil, []campaigns.StockKey{key("s2", "p2")}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			mustStock(t)(c.PutStock(ctx, "adv", st.give))
			diff(t, "out of stock", collectOut(t, c, "adv"), st.want)
		})
	}
}

func testStockPerAdvertiser(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	for _, adv := range []string{"a", "a:", "ab", "b"} {
		must(t, c.PutStores(ctx, adv, []campaigns.Store{store("s1", "1"), store("s2", "2")}))
		mustStock(t)(c.PutStock(ctx, adv, []campaigns.StockUpdate{outRow("s1", "p-"+adv), outRow("s2", "p")}))
	}
	var all []campaigns.StockKey
	for _, adv := range []string{"a", "a:", "ab", "b"} {
		want := []campaigns.StockKey{
			{AdvertiserID: adv, StoreID: "s1", ProductID: "p-" + adv},
			{AdvertiserID: adv, StoreID: "s2", ProductID: "p"},
		}
		diff(t, "OutOfStock("+adv+")", collectOut(t, c, adv), want)
		all = append(all, want...)
	}
	diff(t, `OutOfStock("")`, collectOut(t, c, ""), all)
	if got := collectOut(t, c, "nobody"); len(got) != 0 {
		t.Fatalf("OutOfStock of an unknown advertiser = %v", got)
	}
}

func testStockEarlyStop(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	stores := MakeStores(1500)
	must(t, c.PutStores(ctx, "adv", stores))
	rows := make([]campaigns.StockUpdate, len(stores))
	for i, s := range stores {
		rows[i] = outRow(s.ID, s.Products[0])
	}
	mustStock(t)(c.PutStock(ctx, "adv", rows))
	for _, stop := range []int{1, 4, 1024, 1025, 1499} {
		calls := 0
		must(t, c.OutOfStock(ctx, "", func(campaigns.StockKey) bool {
			calls++
			return calls < stop
		}))
		if calls != stop {
			t.Fatalf("fn called %d times, want %d", calls, stop)
		}
	}
	if n := len(collectOut(t, c, "adv")); n != len(stores) {
		t.Fatalf("%d rows out of stock, want %d", n, len(stores))
	}
}

// testStockStaleRows: a row with an AsOf before the time kept for its
// (store, product) is skipped and reported; one at or after it applies and
// keeps its time; one without a time applies and forgets it; a refused batch
// keeps no time; DeleteStore forgets the store's times.
func testStockStaleRows(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.PutStores(ctx, "adv", []campaigns.Store{store("s1", "1"), store("s10", "10"), store("s2", "2")}))
	must(t, c.PutStores(ctx, "adv2", []campaigns.Store{store("s1", "1")}))
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
	at := func(r campaigns.StockUpdate, minutes int) campaigns.StockUpdate {
		r.AsOf = ptr(t0.Add(time.Duration(minutes) * time.Minute))
		return r
	}
	key := func(store, product string) campaigns.StockKey {
		return campaigns.StockKey{AdvertiserID: "adv", StoreID: store, ProductID: product}
	}
	steps := []struct {
		name      string
		give      []campaigns.StockUpdate
		wantStale []int
		want      []campaigns.StockKey
	}{
		{"out at 10", []campaigns.StockUpdate{at(outRow("s1", "p"), 10)}, nil, []campaigns.StockKey{key("s1", "p")}},
		{"in at 5 is stale", []campaigns.StockUpdate{at(inRow("s1", "p"), 5)}, []int{0}, []campaigns.StockKey{key("s1", "p")}},
		{"in at 10 applies (a retry of the same moment)", []campaigns.StockUpdate{at(inRow("s1", "p"), 10)}, nil, nil},
		{"out at 9 is stale", []campaigns.StockUpdate{at(outRow("s1", "p"), 9)}, []int{0}, nil},
		{"other products, stores and advertisers keep their own times", []campaigns.StockUpdate{
			at(outRow("s1", "p2"), 1), at(outRow("s10", "p"), 1), at(outRow("s2", "p"), 1),
		}, nil, []campaigns.StockKey{key("s1", "p2"), key("s10", "p"), key("s2", "p")}},
		{"within a batch, in order", []campaigns.StockUpdate{
			at(inRow("s1", "p2"), 20), at(outRow("s1", "p2"), 15), at(inRow("s10", "p"), 2), at(outRow("s10", "p"), 3),
		}, []int{1}, []campaigns.StockKey{key("s10", "p"), key("s2", "p")}},
		{"a row without a time applies", []campaigns.StockUpdate{outRow("s1", "p2")}, nil, []campaigns.StockKey{key("s1", "p2"), key("s10", "p"), key("s2", "p")}},
		{"and forgets the time kept", []campaigns.StockUpdate{at(inRow("s1", "p2"), 1)}, nil, []campaigns.StockKey{key("s10", "p"), key("s2", "p")}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			stale, err := c.PutStock(ctx, "adv", st.give)
			must(t, err)
			if !slices.Equal(stale, st.wantStale) {
				t.Fatalf("stale rows %v, want %v", stale, st.wantStale)
			}
			diff(t, "out of stock", collectOut(t, c, "adv"), st.want)
		})
	}
	t.Run("another advertiser's same IDs", func(t *testing.T) {
		mustStock(t)(c.PutStock(ctx, "adv2", []campaigns.StockUpdate{at(outRow("s1", "p"), -60)}))
		diff(t, "adv2 out of stock", collectOut(t, c, "adv2"), []campaigns.StockKey{{AdvertiserID: "adv2", StoreID: "s1", ProductID: "p"}})
	})
	t.Run("a refused batch keeps no time", func(t *testing.T) {
		_, err := c.PutStock(ctx, "adv", []campaigns.StockUpdate{at(outRow("s2", "p"), 100), outRow("nope", "p")})
		wantCode(t, err, campaigns.Invalid)
		mustStock(t)(c.PutStock(ctx, "adv", []campaigns.StockUpdate{at(inRow("s2", "p"), 50)}))
		diff(t, "out of stock", collectOut(t, c, "adv"), []campaigns.StockKey{key("s10", "p")})
	})
	t.Run("DeleteStore forgets its times", func(t *testing.T) {
		must(t, c.DeleteStore(ctx, "adv", "s10"))
		must(t, c.PutStores(ctx, "adv", []campaigns.Store{store("s10", "10")}))
		mustStock(t)(c.PutStock(ctx, "adv", []campaigns.StockUpdate{at(outRow("s10", "p"), 0)}))
		diff(t, "out of stock", collectOut(t, c, "adv"), []campaigns.StockKey{key("s10", "p")})
		// s1's times were kept: its store is another, whose ID s10 extends.
		stale, err := c.PutStock(ctx, "adv", []campaigns.StockUpdate{at(outRow("s1", "p"), 9)})
		must(t, err)
		if !slices.Equal(stale, []int{0}) {
			t.Fatalf("s1's row at 9 after deleting s10: stale %v, want [0]", stale)
		}
	})
}
