package storagetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// EventsBackend is what RunEvents tests: the Events of a backend, and the
// Close it shares with the backend's Catalog.
type EventsBackend interface {
	storage.Events
	Close() error
}

// RunEvents runs the contract suite of storage.Events as subtests of t.
// open must return a new, empty backend for each subtest and arrange for it
// to be closed when that subtest ends; the suite closes some itself first,
// so Close must tolerate a second call.
//
// Beyond the letter of storage.Events' comments, the suite holds backends to
// what the tracking service and reports rely on: event times are kept to the
// second; a Record of an invalid Kind or an Hour above 23 fails and counts
// nothing; RawEvents hands out copies; a cancelled context fails every
// method with an error wrapping ctx.Err() and changes nothing; after Close
// every method fails.
func RunEvents(t *testing.T, open func(t *testing.T) EventsBackend) {
	tests := []struct {
		name string
		run  func(t *testing.T, ev EventsBackend)
	}{
		{"RecordOnce", testRecordOnce},
		{"RecordConcurrent", testRecordConcurrent},
		{"RecordInvalid", testRecordInvalid},
		{"RawEvents", testRawEvents},
		{"ServedBatchOnce", testServedBatchOnce},
		{"AggregatesEveryGrouping", testAggregatesEveryGrouping},
		{"AggregatesFilters", testAggregatesFilters},
		{"AggregatesManyRows", testAggregatesManyRows},
		{"AggregatesEarlyStop", testAggregatesEarlyStop},
		{"AggregatesDayRangeEnds", testAggregatesDayRangeEnds},
		{"Purge", testPurge},
		{"PurgeDetail", testPurgeDetail},
		{"TrackingSecret", testTrackingSecret},
		{"ContextDone", testEventsContextDone},
		{"Close", testEventsClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// base is the issue time of the suite's tokens: 10:00 in Tokyo, the first
// day of the suite's reports.
var base = time.Date(2026, 11, 2, 1, 0, 0, 0, time.UTC)

var baseDay = storage.DayOf(base.In(time.FixedZone("JST", 9*3600)))

func tokenID(n int) storage.TokenID {
	var id storage.TokenID
	binary.BigEndian.PutUint64(id[:], uint64(n))
	id[15] = 0xa5
	return id
}

func aggKey(day, hour int, adv, cmp, pub, store string, cell uint64) storage.AggKey {
	return storage.AggKey{Day: baseDay + storage.Day(day), Hour: uint8(hour), AdvertiserID: adv, CampaignID: cmp,
		PublisherID: pub, StoreID: store, Cell: cell}
}

func newEvent(kind storage.Kind, token int, key storage.AggKey) *storage.Event {
	issued := base.Add(time.Duration(key.Day-baseDay) * 24 * time.Hour)
	return &storage.Event{Kind: kind, Token: tokenID(token), AdID: fmt.Sprintf("req%d.1", token),
		Issued: issued, At: issued.Add(90 * time.Second), Key: key}
}

func record(t *testing.T, ev storage.Events, e *storage.Event) bool {
	t.Helper()
	ok, err := ev.Record(t.Context(), e)
	must(t, err)
	return ok
}

// totals sums every aggregate of the suite's days.
func totals(t *testing.T, ev storage.Events) storage.Counts {
	t.Helper()
	var c storage.Counts
	q := &storage.AggregateQuery{From: baseDay - 10, To: baseDay + 10}
	must(t, ev.Aggregates(t.Context(), q, func(a *storage.Aggregate) bool { c.Add(a.Counts); return true }))
	return c
}

// Grouped returns the aggregates q selects, summed by q.Dims.
func Grouped(t testing.TB, ev storage.Events, q storage.AggregateQuery) map[storage.AggKey]storage.Counts {
	t.Helper()
	out := make(map[storage.AggKey]storage.Counts)
	err := ev.Aggregates(t.Context(), &q, func(a *storage.Aggregate) bool {
		k := a.AggKey.Project(q.Dims)
		c := out[k]
		c.Add(a.Counts)
		out[k] = c
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testRecordOnce(t *testing.T, ev EventsBackend) {
	k := aggKey(0, 10, "adv_1", "cmp_1", "pub_1", "s1", 0x882f5aa6b7fffff)
	if !record(t, ev, newEvent(storage.Impression, 1, k)) {
		t.Fatal("first impression not counted")
	}
	for range 3 {
		if record(t, ev, newEvent(storage.Impression, 1, k)) {
			t.Fatal("repeated impression counted")
		}
	}
	// The same token counts once per kind.
	for _, kind := range []storage.Kind{storage.Click, storage.Navigation, storage.Visit} {
		if !record(t, ev, newEvent(kind, 1, k)) || record(t, ev, newEvent(kind, 1, k)) {
			t.Fatalf("%v of token 1: want counted once", kind)
		}
	}
	if !record(t, ev, newEvent(storage.Impression, 2, k)) {
		t.Fatal("another token's impression not counted")
	}
	want := storage.Counts{Impressions: 2, Clicks: 1, Navigations: 1, Visits: 1}
	if got := totals(t, ev); got != want {
		t.Fatalf("totals %+v, want %+v", got, want)
	}
}

func testRecordConcurrent(t *testing.T, ev EventsBackend) {
	const workers, tokens = 8, 40
	keys := []storage.AggKey{
		aggKey(0, 9, "adv_1", "cmp_1", "pub_1", "s1", 1),
		aggKey(1, 23, "adv_2", "cmp_2", "pub_2", "s2", 2),
	}
	var counted [len(storage.Kinds)][tokens]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			// Every worker fires every token of every kind, each in its
			// own order, plus tokens of its own.
			r := rand.New(rand.NewPCG(uint64(w), 1))
			order := r.Perm(tokens * len(storage.Kinds))
			for _, i := range order {
				kind, tok := storage.Kinds[i%len(storage.Kinds)], i/len(storage.Kinds)
				ok, err := ev.Record(context.Background(), newEvent(kind, tok, keys[tok%2]))
				if err != nil {
					errs <- err
					return
				}
				if ok {
					counted[i%len(storage.Kinds)][tok].Add(1)
				}
			}
			for i := range 5 {
				if _, err := ev.Record(context.Background(), newEvent(storage.Impression, 1000+w*10+i, keys[0])); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for k := range counted {
		for tok := range counted[k] {
			if n := counted[k][tok].Load(); n != 1 {
				t.Fatalf("%v of token %d reported counted %d times", storage.Kinds[k], tok, n)
			}
		}
	}
	want := storage.Counts{Impressions: tokens + workers*5, Clicks: tokens, Navigations: tokens, Visits: tokens}
	if got := totals(t, ev); got != want {
		t.Fatalf("totals %+v, want %+v", got, want)
	}
	byDay := Grouped(t, ev, storage.AggregateQuery{From: baseDay, To: baseDay + 1, Dims: storage.DimsOf(storage.DimDay)})
	if got := byDay[storage.AggKey{Day: baseDay + 1}]; got != (storage.Counts{Impressions: tokens / 2, Clicks: tokens / 2, Navigations: tokens / 2, Visits: tokens / 2}) {
		t.Fatalf("second day %+v", got)
	}
}

func testRecordInvalid(t *testing.T, ev EventsBackend) {
	k := aggKey(0, 10, "adv_1", "cmp_1", "pub_1", "s1", 1)
	bad := []*storage.Event{
		newEvent(0, 1, k),
		newEvent(storage.Visit+1, 2, k),
		newEvent(storage.Impression, 3, aggKey(0, 24, "adv_1", "cmp_1", "pub_1", "s1", 1)),
	}
	for i, e := range bad {
		if ok, err := ev.Record(t.Context(), e); err == nil || ok {
			t.Errorf("bad event %d: counted %v, err %v", i, ok, err)
		}
	}
	if got := totals(t, ev); got != (storage.Counts{}) {
		t.Fatalf("invalid events counted: %+v", got)
	}
}

func testRawEvents(t *testing.T, ev EventsBackend) {
	want := []*storage.Event{
		newEvent(storage.Impression, 1, aggKey(0, 10, "adv_1", "cmp_1", "pub_1", "s1", 0x882f5aa6b7fffff)),
		newEvent(storage.Visit, 1, aggKey(0, 11, "adv_1", "cmp_1", "pub_1", "s1", 0x882f5aa6b7fffff)),
		newEvent(storage.Click, 7, aggKey(3, 0, "adv_2", "cmp_9", "pub_2", "store-ü", 0)),
	}
	want[1].At = want[1].At.Add(time.Hour)
	for _, e := range want {
		record(t, ev, e)
	}
	got := rawEvents(t, ev)
	if len(got) != len(want) {
		t.Fatalf("%d raw events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Issued.Equal(w.Issued) || !g.At.Equal(w.At) {
			t.Fatalf("event %d times %v %v, want %v %v", i, g.Issued, g.At, w.Issued, w.At)
		}
		g2, w2 := *g, *w
		g2.Issued, g2.At, w2.Issued, w2.At = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		diff(t, fmt.Sprintf("raw event %d", i), g2, w2)
	}
	// What RawEvents hands out is the caller's.
	got[0].Key.CampaignID = "changed"
	if again := rawEvents(t, ev); again[0].Key.CampaignID != "cmp_1" {
		t.Fatal("changing a returned event changed the store")
	}
	n := 0
	must(t, ev.RawEvents(t.Context(), func(*storage.Event) bool { n++; return false }))
	if n != 1 {
		t.Fatalf("fn called %d times after returning false", n)
	}
}

// rawEvents returns every raw event, ordered by token, then kind.
func rawEvents(t *testing.T, ev storage.Events) []*storage.Event {
	t.Helper()
	var got []*storage.Event
	must(t, ev.RawEvents(t.Context(), func(e *storage.Event) bool { got = append(got, e); return true }))
	slices.SortFunc(got, func(a, b *storage.Event) int {
		if c := bytes.Compare(a.Token[:], b.Token[:]); c != 0 {
			return c
		}
		return int(a.Kind) - int(b.Kind)
	})
	return got
}

func testServedBatchOnce(t *testing.T, ev EventsBackend) {
	ctx := t.Context()
	rows := []storage.ServedCount{
		{Key: aggKey(0, 10, "adv_1", "cmp_1", "pub_1", "s1", 1), N: 3},
		{Key: aggKey(0, 10, "adv_1", "cmp_1", "pub_1", "s2", 1), N: 2},
		{Key: aggKey(0, 10, "adv_1", "cmp_1", "pub_1", "s1", 1), N: 1}, // the same key twice adds up
	}
	must(t, ev.AddServed(ctx, "replica-a:1", rows))
	must(t, ev.AddServed(ctx, "replica-a:1", rows)) // a retry
	must(t, ev.AddServed(ctx, "replica-b:1", rows[:1]))
	if got := totals(t, ev); got != (storage.Counts{Served: 9}) {
		t.Fatalf("totals %+v, want 9 served", got)
	}
	must(t, ev.AddServed(ctx, "replica-a:2", nil)) // an empty flush is fine
	for _, bad := range []storage.ServedCount{
		{Key: aggKey(0, 24, "adv_1", "cmp_1", "pub_1", "s1", 1), N: 1},
		{Key: aggKey(0, 1, "adv_1", "", "pub_1", "s1", 1), N: 1},
	} {
		if err := ev.AddServed(ctx, "replica-a:3", []storage.ServedCount{rows[0], bad}); err == nil {
			t.Errorf("bad row %+v accepted", bad.Key)
		}
	}
	if got := totals(t, ev); got != (storage.Counts{Served: 9}) {
		t.Fatalf("a rejected batch changed the totals: %+v", got)
	}
}

// world is a varied set of events and served counts over three days, and
// the counts they must add up to.
type world struct {
	events []*storage.Event
	served []storage.ServedCount
}

func makeWorld() world {
	r := rand.New(rand.NewPCG(42, 7))
	advs := []string{"adv_a", "adv_b"}
	cmps := map[string][]string{"adv_a": {"cmp_a1", "cmp_a2"}, "adv_b": {"cmp_b1"}}
	pubs := []string{"pub_1", "pub_2", "pub_3"}
	stores := []string{"s1", "s2", "s3"} // the same IDs at both advertisers
	cells := []uint64{0x882f5aa6b7fffff, 0x882f5aa6a3fffff, 0}
	var w world
	tok := 0
	for range 400 {
		adv := advs[r.IntN(len(advs))]
		k := aggKey(r.IntN(3), r.IntN(24), adv, cmps[adv][r.IntN(len(cmps[adv]))], pubs[r.IntN(len(pubs))],
			stores[r.IntN(len(stores))], cells[r.IntN(len(cells))])
		w.served = append(w.served, storage.ServedCount{Key: k, N: uint64(1 + r.IntN(5))})
		tok++
		for _, kind := range storage.Kinds {
			if r.IntN(int(kind)+1) == 0 {
				w.events = append(w.events, newEvent(kind, tok, k))
			}
		}
	}
	return w
}

func (w world) load(t *testing.T, ev storage.Events) {
	must(t, ev.AddServed(t.Context(), "w1", w.served[:200]))
	must(t, ev.AddServed(t.Context(), "w2", w.served[200:]))
	// Concurrently, as a server records them: a backend that commits
	// in groups answers a lone caller slowly.
	var wg sync.WaitGroup
	errs := make(chan error, len(w.events))
	for i := range 16 {
		wg.Go(func() {
			for j := i; j < len(w.events); j += 16 {
				e := w.events[j]
				ok, err := ev.Record(context.Background(), e)
				if err == nil && !ok {
					err = fmt.Errorf("world event %v %x not counted", e.Kind, e.Token)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// want sums the world by q.Dims, applying q's filters and days.
func (w world) want(q storage.AggregateQuery) map[storage.AggKey]storage.Counts {
	l := Ledger{}
	l.Served(w.served)
	for _, e := range w.events {
		var c storage.Counts
		c.AddKind(e.Kind, 1)
		l.Add(e.Key, c)
	}
	return l.Want(q)
}

// Ledger is the counts a backend must report, by finest key: a test's own
// account of what it wrote.
type Ledger map[storage.AggKey]storage.Counts

// Add adds c to k's counts.
func (l Ledger) Add(k storage.AggKey, c storage.Counts) {
	sum := l[k]
	sum.Add(c)
	l[k] = sum
}

// Served adds the served counts of rows.
func (l Ledger) Served(rows []storage.ServedCount) {
	for _, r := range rows {
		l.Add(r.Key, storage.Counts{Served: r.N})
	}
}

// Want sums the ledger by q.Dims, applying q's filters and days: what
// Grouped of q must return.
func (l Ledger) Want(q storage.AggregateQuery) map[storage.AggKey]storage.Counts {
	in := func(set []string, v string) bool { return set == nil || slices.Contains(set, v) }
	out := make(map[storage.AggKey]storage.Counts)
	for k, c := range l {
		if k.Day < q.From || k.Day > q.To || !in(q.Advertisers, k.AdvertiserID) || !in(q.Campaigns, k.CampaignID) || !in(q.Publishers, k.PublisherID) {
			continue
		}
		p := k.Project(q.Dims)
		sum := out[p]
		sum.Add(c)
		out[p] = sum
	}
	return out
}

func testAggregatesEveryGrouping(t *testing.T, ev EventsBackend) {
	w := makeWorld()
	w.load(t, ev)
	for dims := storage.Dims(0); dims <= storage.AllDims; dims++ {
		q := storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: dims}
		got, want := Grouped(t, ev, q), w.want(q)
		if len(got) != len(want) {
			t.Fatalf("group by %v: %d groups, want %d", dims.List(), len(got), len(want))
		}
		diff(t, fmt.Sprintf("group by %v", dims.List()), got, want)
	}
}

func testAggregatesFilters(t *testing.T, ev EventsBackend) {
	w := makeWorld()
	w.load(t, ev)
	day := storage.DimsOf(storage.DimDay)
	tests := []struct {
		name string
		give storage.AggregateQuery
	}{
		{"one day", storage.AggregateQuery{From: baseDay + 1, To: baseDay + 1, Dims: day}},
		{"days outside", storage.AggregateQuery{From: baseDay + 5, To: baseDay + 9, Dims: day}},
		{"to before from", storage.AggregateQuery{From: baseDay + 2, To: baseDay, Dims: day}},
		{"advertiser", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: day, Advertisers: []string{"adv_b"}}},
		{"advertisers, one unknown", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: day, Advertisers: []string{"adv_b", "adv_zz", "adv_a"}}},
		{"no advertisers", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: day, Advertisers: []string{}}},
		{"campaign", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: day, Campaigns: []string{"cmp_a2"}}},
		{"campaign of another advertiser", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: day, Campaigns: []string{"cmp_a2"}, Advertisers: []string{"adv_b"}}},
		{"no campaigns", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: day, Campaigns: []string{}}},
		{"publisher", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: day, Publishers: []string{"pub_2"}}},
		{"publisher by campaign", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: storage.DimsOf(storage.DimDay, storage.DimCampaign), Publishers: []string{"pub_2", "pub_3"}}},
		{"publisher and advertiser", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: day, Publishers: []string{"pub_1"}, Advertisers: []string{"adv_a"}}},
		{"publisher by hour", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: storage.DimsOf(storage.DimHour), Publishers: []string{"pub_1"}, Advertisers: []string{"adv_a"}}},
		{"publisher by store", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: storage.DimsOf(storage.DimStore), Publishers: []string{"pub_3"}, Campaigns: []string{"cmp_b1", "cmp_a1"}}},
		{"advertiser by cell", storage.AggregateQuery{From: baseDay + 1, To: baseDay + 2, Dims: storage.DimsOf(storage.DimCell), Advertisers: []string{"adv_a"}}},
		{"no publishers", storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: day, Publishers: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := Grouped(t, ev, tt.give), w.want(tt.give)
			diff(t, "groups", got, want)
		})
	}
}

// testAggregatesManyRows reads more rows than a backend plausibly reads at
// once, with and without seeks, so that resuming between chunks is tested.
func testAggregatesManyRows(t *testing.T, ev EventsBackend) {
	var rows []storage.ServedCount
	for i := range 12000 {
		adv := fmt.Sprintf("adv_%d", i%3)
		rows = append(rows, storage.ServedCount{Key: aggKey(i%2, i%24, adv, fmt.Sprintf("cmp_%05d", i), "pub_1", "s1", uint64(i)), N: 1})
	}
	must(t, ev.AddServed(t.Context(), "big", rows))
	for _, q := range []storage.AggregateQuery{
		{From: baseDay, To: baseDay + 1, Dims: storage.DimsOf(storage.DimCampaign)},
		{From: baseDay, To: baseDay + 1, Dims: storage.DimsOf(storage.DimCell)},
		{From: baseDay, To: baseDay + 1, Dims: storage.DimsOf(storage.DimCampaign), Advertisers: []string{"adv_0", "adv_2"}},
		{From: baseDay, To: baseDay + 1, Dims: storage.DimsOf(storage.DimCampaign), Publishers: []string{"pub_1"}, Advertisers: []string{"adv_1"}},
	} {
		got := Grouped(t, ev, q)
		want := 12000
		if q.Advertisers != nil {
			want = 4000 * len(q.Advertisers)
		}
		if len(got) != want {
			t.Fatalf("query %+v: %d groups, want %d", q, len(got), want)
		}
		for k, c := range got {
			if c.Served != 1 {
				t.Fatalf("query %+v: group %+v served %d, want 1", q, k, c.Served)
			}
		}
	}
}

func testAggregatesEarlyStop(t *testing.T, ev EventsBackend) {
	w := makeWorld()
	w.load(t, ev)
	n := 0
	q := &storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: storage.AllDims}
	must(t, ev.Aggregates(t.Context(), q, func(*storage.Aggregate) bool { n++; return n < 5 }))
	if n != 5 {
		t.Fatalf("fn called %d times, want it to stop at 5", n)
	}
}

// testAggregatesDayRangeEnds: a range that ends on the last Day (or starts
// on the first) is read to its end, with every kind of filter, and returns;
// a range of more than storage.MaxAggregateDays is Invalid. (A loop over the
// days up to To == math.MaxInt32 never ended: d++ wrapped round.)
func testAggregatesDayRangeEnds(t *testing.T, ev EventsBackend) {
	const first, last = storage.Day(math.MinInt32), storage.Day(math.MaxInt32)
	row := func(d storage.Day, n uint64) storage.ServedCount {
		return storage.ServedCount{Key: storage.AggKey{Day: d, Hour: 10, AdvertiserID: "adv_1", CampaignID: "cmp_1", PublisherID: "pub_1", StoreID: "s1", Cell: 1}, N: n}
	}
	must(t, ev.AddServed(t.Context(), "ends", []storage.ServedCount{row(first, 3), row(first+1, 5), row(last-1, 7), row(last, 11)}))
	tests := []struct {
		name     string
		from, to storage.Day
		want     uint64
	}{
		{"last day", last, last, 11},
		{"last two days", last - 1, last, 18},
		{"first day", first, first, 3},
		{"first two days", first, first + 1, 8},
	}
	filters := []struct {
		name string
		q    storage.AggregateQuery
	}{
		{"no filter", storage.AggregateQuery{}},
		{"advertisers", storage.AggregateQuery{Advertisers: []string{"adv_1"}}},
		{"publishers", storage.AggregateQuery{Publishers: []string{"pub_1"}, Dims: storage.DimsOf(storage.DimPublisher)}},
		{"campaigns", storage.AggregateQuery{Campaigns: []string{"cmp_1"}}},
	}
	for _, tt := range tests {
		for _, f := range filters {
			q := f.q
			q.From, q.To = tt.from, tt.to
			done := make(chan struct{})
			var got uint64
			var err error
			go func() {
				defer close(done)
				err = ev.Aggregates(t.Context(), &q, func(a *storage.Aggregate) bool { got += a.Counts.Served; return true })
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s, %s: Aggregates of days %d to %d has not returned in 10 s", tt.name, f.name, q.From, q.To)
			}
			if err != nil {
				t.Fatalf("%s, %s: %v", tt.name, f.name, err)
			}
			if got != tt.want {
				t.Errorf("%s, %s: served %d, want %d", tt.name, f.name, got, tt.want)
			}
		}
	}
	for _, q := range []storage.AggregateQuery{
		{From: first, To: last},
		{From: 0, To: storage.MaxAggregateDays},
		{From: 0, To: storage.MaxAggregateDays, Advertisers: []string{"adv_1"}},
	} {
		err := ev.Aggregates(t.Context(), &q, func(*storage.Aggregate) bool { return true })
		if campaigns.ErrorCode(err) != campaigns.Invalid {
			t.Errorf("Aggregates of days %d to %d: %v, want Invalid", q.From, q.To, err)
		}
	}
	q := storage.AggregateQuery{From: 0, To: storage.MaxAggregateDays - 1}
	must(t, ev.Aggregates(t.Context(), &q, func(*storage.Aggregate) bool { return true }))
}

func testPurge(t *testing.T, ev EventsBackend) {
	var events []*storage.Event
	for day := range 4 {
		for tok := range 3 {
			e := newEvent(storage.Impression, day*10+tok, aggKey(day, 10, "adv_1", "cmp_1", "pub_1", "s1", 1))
			events = append(events, e)
			record(t, ev, e)
		}
	}
	before := totals(t, ev)
	// Purge tokens issued before the UTC day of the third day's tokens.
	n, err := ev.PurgeEvents(t.Context(), events[6].Issued)
	must(t, err)
	if n != 6 {
		t.Fatalf("purged %d raw events, want 6", n)
	}
	if got := rawEvents(t, ev); len(got) != 6 || got[0].Token != events[6].Token {
		t.Fatalf("after purge %d raw events remain, first %v", len(got), got[0].Token)
	}
	if after := totals(t, ev); after != before {
		t.Fatalf("purge changed aggregates: %+v, want %+v", after, before)
	}
	// Kept tokens still count once.
	if record(t, ev, events[7]) {
		t.Fatal("a kept token counted again after a purge")
	}
	n, err = ev.PurgeEvents(t.Context(), events[6].Issued)
	must(t, err)
	if n != 0 {
		t.Fatalf("second purge deleted %d", n)
	}
	// A cutoff before 1970 (a retention of a century) deletes nothing; the
	// embedded store's unsigned day once wrapped it round past every event.
	n, err = ev.PurgeEvents(t.Context(), time.Unix(0, 0).AddDate(-30, 0, 0))
	must(t, err)
	if got := rawEvents(t, ev); n != 0 || len(got) != 6 {
		t.Fatalf("a purge before 1970 deleted %d raw events, %d remain; want 0 and 6", n, len(got))
	}
}

// detailDims reports whether dims need the finest rollup: a store or a
// cell.
func detailDims(dims storage.Dims) bool {
	return dims.Has(storage.DimStore) || dims.Has(storage.DimCell)
}

func testPurgeDetail(t *testing.T, ev EventsBackend) {
	ctx := t.Context()
	w := makeWorld() // days baseDay to baseDay+2
	w.load(t, ev)
	raw := len(rawEvents(t, ev))
	n, err := ev.PurgeDetail(ctx, baseDay+2)
	must(t, err)
	if n != 2 {
		t.Fatalf("purged the detail of %d days, want 2", n)
	}
	// A grouping answered by each rollup, and by store and by cell alone.
	groupings := []storage.Dims{
		0,
		storage.DimsOf(storage.DimDay, storage.DimAdvertiser, storage.DimCampaign),
		storage.DimsOf(storage.DimDay, storage.DimPublisher, storage.DimAdvertiser, storage.DimCampaign),
		storage.DimsOf(storage.DimDay, storage.DimHour, storage.DimAdvertiser, storage.DimCampaign, storage.DimPublisher),
		storage.DimsOf(storage.DimStore),
		storage.DimsOf(storage.DimCell),
		storage.AllDims,
	}
	check := func(stage string, w world) {
		t.Helper()
		for _, dims := range groupings {
			q := storage.AggregateQuery{From: baseDay, To: baseDay + 2, Dims: dims}
			want := q
			if detailDims(dims) {
				want.From = baseDay + 2 // by store or cell only the kept day
			}
			diff(t, fmt.Sprintf("%s, group by %v", stage, dims.List()), Grouped(t, ev, q), w.want(want))
		}
	}
	check("after the purge", w)
	if got := len(rawEvents(t, ev)); got != raw {
		t.Fatalf("purging detail deleted raw events: %d left of %d", got, raw)
	}
	n, err = ev.PurgeDetail(ctx, baseDay+2)
	must(t, err)
	if n != 0 {
		t.Fatalf("a second purge deleted the detail of %d days", n)
	}

	// Counts of a purged day written afterwards are there until the next
	// purge deletes their detail too.
	k := aggKey(0, 23, "adv_late", "cmp_late", "pub_1", "s9", 0x882f5aa6b7fffff)
	late := newEvent(storage.Click, 9999, k)
	record(t, ev, late)
	must(t, ev.AddServed(ctx, "late", []storage.ServedCount{{Key: k, N: 4}}))
	w.events = append(w.events, late)
	w.served = append(w.served, storage.ServedCount{Key: k, N: 4})
	q := storage.AggregateQuery{From: baseDay, To: baseDay, Dims: storage.DimsOf(storage.DimStore)}
	diff(t, "the late day by store", Grouped(t, ev, q), Ledger{k: {Served: 4, Clicks: 1}}.Want(q))
	n, err = ev.PurgeDetail(ctx, baseDay+2)
	must(t, err)
	if n != 1 {
		t.Fatalf("the purge after a late write deleted the detail of %d days, want 1", n)
	}
	check("after the late write's purge", w)
}

func testTrackingSecret(t *testing.T, ev EventsBackend) {
	ctx := t.Context()
	first := []byte("first-secret-0123456789abcdef0123")
	got, err := ev.TrackingSecret(ctx, first)
	must(t, err)
	if !bytes.Equal(got, first) {
		t.Fatalf("first call returned %q", got)
	}
	got[0] = 'X' // the caller's copy
	again, err := ev.TrackingSecret(ctx, []byte("second-secret-0123456789abcdef012"))
	must(t, err)
	if !bytes.Equal(again, first) {
		t.Fatalf("second call returned %q, want the first secret", again)
	}
	if _, err := ev.TrackingSecret(ctx, nil); err == nil {
		t.Fatal("an empty candidate was accepted")
	}
}

// eventCalls are every method of Events, with arguments that would succeed.
func eventCalls(visits *int) []struct {
	name string
	do   func(ctx context.Context, ev storage.Events) error
} {
	k := aggKey(0, 10, "adv_1", "cmp_1", "pub_1", "s1", 1)
	return []struct {
		name string
		do   func(ctx context.Context, ev storage.Events) error
	}{
		{"Record", func(ctx context.Context, ev storage.Events) error {
			_, err := ev.Record(ctx, newEvent(storage.Click, 99, k))
			return err
		}},
		{"Record repeat", func(ctx context.Context, ev storage.Events) error {
			_, err := ev.Record(ctx, newEvent(storage.Impression, 1, k))
			return err
		}},
		{"AddServed", func(ctx context.Context, ev storage.Events) error {
			return ev.AddServed(ctx, "b2", []storage.ServedCount{{Key: k, N: 1}})
		}},
		{"Aggregates", func(ctx context.Context, ev storage.Events) error {
			return ev.Aggregates(ctx, &storage.AggregateQuery{From: baseDay, To: baseDay, Dims: storage.AllDims}, func(*storage.Aggregate) bool { *visits++; return true })
		}},
		{"RawEvents", func(ctx context.Context, ev storage.Events) error {
			return ev.RawEvents(ctx, func(*storage.Event) bool { *visits++; return true })
		}},
		{"PurgeEvents", func(ctx context.Context, ev storage.Events) error {
			_, err := ev.PurgeEvents(ctx, base.Add(72*time.Hour))
			return err
		}},
		{"PurgeDetail", func(ctx context.Context, ev storage.Events) error {
			_, err := ev.PurgeDetail(ctx, baseDay+3)
			return err
		}},
		{"TrackingSecret", func(ctx context.Context, ev storage.Events) error {
			_, err := ev.TrackingSecret(ctx, []byte("secret-0123456789abcdef0123456789"))
			return err
		}},
	}
}

func seedEvents(t *testing.T, ev storage.Events) {
	k := aggKey(0, 10, "adv_1", "cmp_1", "pub_1", "s1", 1)
	record(t, ev, newEvent(storage.Impression, 1, k))
	must(t, ev.AddServed(t.Context(), "b1", []storage.ServedCount{{Key: k, N: 2}}))
}

func testEventsContextDone(t *testing.T, ev EventsBackend) {
	seedEvents(t, ev)
	before, raw := totals(t, ev), len(rawEvents(t, ev))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var visits int
	for _, cl := range eventCalls(&visits) {
		t.Run(cl.name, func(t *testing.T) {
			if err := cl.do(ctx, ev); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want one wrapping context.Canceled", err)
			}
			if visits != 0 {
				t.Fatalf("fn called %d times under a done context", visits)
			}
		})
	}
	if after := totals(t, ev); after != before || len(rawEvents(t, ev)) != raw {
		t.Fatalf("calls under a done context changed the counts: %+v, want %+v", after, before)
	}
}

func testEventsClose(t *testing.T, ev EventsBackend) {
	seedEvents(t, ev)
	must(t, ev.Close())
	var visits int
	for _, cl := range eventCalls(&visits) {
		t.Run(cl.name, func(t *testing.T) {
			if err := cl.do(t.Context(), ev); err == nil {
				t.Fatal("succeeded after Close")
			}
			if visits != 0 {
				t.Fatalf("fn called %d times after Close", visits)
			}
		})
	}
	_ = ev.Close()
}
