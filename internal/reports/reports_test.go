package reports

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/storage"
)

// fakeEvents serves a fixed list of aggregate rows, in the order given,
// ignoring filters: enough to test grouping, which must not depend on the
// order or granularity of what a backend returns.
type fakeEvents struct {
	storage.Events
	rows   []storage.Aggregate
	during func() // called as the rows are read
}

func (f *fakeEvents) Aggregates(_ context.Context, _ *storage.AggregateQuery, fn func(*storage.Aggregate) bool) error {
	if f.during != nil {
		f.during()
	}
	for i := range f.rows {
		a := f.rows[i]
		if !fn(&a) {
			return nil
		}
	}
	return nil
}

type fakeCatalog struct{ storage.Catalog }

var admin = &auth.Principal{ID: auth.AdminID, Role: campaigns.Admin}

func newService(t *testing.T, rows []storage.Aggregate) *Service {
	t.Helper()
	s, err := New(&fakeEvents{rows: rows}, fakeCatalog{}, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGroupingMergesInAnyOrder feeds rows in random order, many per group,
// enough to merge the buffer several times, and checks every group's sum.
func TestGroupingMergesInAnyOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const groups = 20_000
	want := make(map[storage.AggKey]storage.Counts)
	var rows []storage.Aggregate
	for i := range 150_000 { // more than the first merge's 65,536
		g := r.IntN(groups)
		if i < groups {
			g = i // every group at least once
		}
		k := storage.AggKey{Day: storage.Day(20400 + g%3), CampaignID: fmt.Sprintf("cmp_%05d", g/3),
			AdvertiserID: "adv", PublisherID: fmt.Sprintf("pub_%d", r.IntN(4)), Hour: uint8(r.IntN(24))}
		c := storage.Counts{Served: uint64(1 + r.IntN(9)), Impressions: uint64(r.IntN(3)), Visits: uint64(r.IntN(2))}
		rows = append(rows, storage.Aggregate{AggKey: k, Counts: c})
		p := k.Project(storage.DimsOf(storage.DimDay, storage.DimCampaign))
		sum := want[p]
		sum.Add(c)
		want[p] = sum
	}
	s := newService(t, rows)
	rep, err := s.Report(context.Background(), admin, Query{From: 20400, To: 20402, GroupBy: storage.DimsOf(storage.DimDay, storage.DimCampaign)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rep.Rows), len(want))
	}
	var total storage.Counts
	for i, row := range rep.Rows {
		if row.Counts != want[row.Key] {
			t.Fatalf("group %+v: %+v, want %+v", row.Key, row.Counts, want[row.Key])
		}
		if i > 0 {
			prev := rep.Rows[i-1].Key
			if prev.Day > row.Key.Day || prev.Day == row.Key.Day && prev.CampaignID >= row.Key.CampaignID {
				t.Fatalf("rows %d and %d out of order: %+v, %+v", i-1, i, prev, row.Key)
			}
		}
		total.Add(row.Counts)
	}
	if total != rep.Totals {
		t.Fatalf("rows sum to %+v, totals say %+v", total, rep.Totals)
	}
}

func TestTooManyRows(t *testing.T) {
	const limit = 70_000 // past the first merge
	rows := make([]storage.Aggregate, limit+1)
	for i := range rows {
		rows[i].Cell = uint64(i + 1)
		rows[i].Served = 1
	}
	s := newService(t, rows)
	s.maxRows = limit
	_, err := s.Report(context.Background(), admin, Query{From: 0, To: 0, GroupBy: storage.DimsOf(storage.DimCell)})
	if campaigns.ErrorCode(err) != campaigns.Invalid {
		t.Fatalf("err %v, want invalid_argument", err)
	}
	// Grouped more coarsely the same rows are one row.
	rep, err := s.Report(context.Background(), admin, Query{From: 0, To: 0, GroupBy: storage.DimsOf(storage.DimDay)})
	if err != nil || len(rep.Rows) != 1 || rep.Rows[0].Served != limit+1 {
		t.Fatalf("by day: %v, %v", err, rep)
	}
}

// TestGroupingNearTheRowLimit: with nearly maxRows groups and many more
// rows, each merge still sorts a few times the rows added since the last,
// not every group again every few rows (a limit of maxRows+1 left room for
// a thousand rows here: 130 merges of 70,000 rows for 200,000 read).
func TestGroupingNearTheRowLimit(t *testing.T) {
	const maxRows, groups, n = 70_000, 69_000, 200_000
	var g grouper
	g.init(storage.DimsOf(storage.DimCell), 0, maxRows)
	var a storage.Aggregate
	for i := range n {
		a.Cell, a.Served = uint64(i%groups+1), 1
		if !g.add(&a) {
			t.Fatalf("row %d: too many groups", i)
		}
	}
	if g.sorted > 3*n {
		t.Errorf("the merges sorted %d rows for %d read: more than 3 times", g.sorted, n)
	}
	rows, ok := g.rows()
	if !ok || len(rows) != groups {
		t.Fatalf("%d rows, %v; want %d", len(rows), ok, groups)
	}
	for _, r := range rows {
		if want := uint64(n / groups); r.Served != want && r.Served != want+1 {
			t.Fatalf("cell %d served %d", r.Key.Cell, r.Served)
		}
	}
}

// TestDetailHorizon: a report by store or cell may not begin before the
// days whose detail is kept; other reports may.
func TestDetailHorizon(t *testing.T) {
	rows := []storage.Aggregate{{Counts: storage.Counts{Served: 3}}}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, err := New(&fakeEvents{rows: rows}, fakeCatalog{}, time.UTC, KeepDetail(7, func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	first := storage.DayOf(now) - 6 // 2026-11-24
	for _, tc := range []struct {
		from  storage.Day
		dims  storage.Dims
		valid bool
	}{
		{first, storage.DimsOf(storage.DimStore), true},
		{first, storage.DimsOf(storage.DimDay, storage.DimCell), true},
		{first - 1, storage.DimsOf(storage.DimStore), false},
		{first - 1, storage.DimsOf(storage.DimCampaign, storage.DimCell), false},
		{first - 30, storage.DimsOf(storage.DimDay, storage.DimHour, storage.DimAdvertiser, storage.DimCampaign, storage.DimPublisher), true},
	} {
		rep, err := s.Report(context.Background(), admin, Query{From: tc.from, To: first + 3, GroupBy: tc.dims})
		switch {
		case tc.valid && (err != nil || rep.Totals.Served != 3):
			t.Errorf("from %v by %v: %v, %+v; want the report", tc.from, tc.dims.List(), err, rep)
		case !tc.valid && campaigns.ErrorCode(err) != campaigns.Invalid:
			t.Errorf("from %v by %v: err %v, want invalid_argument", tc.from, tc.dims.List(), err)
		case !tc.valid && !strings.Contains(err.Error(), "2026-11-24 or later"):
			t.Errorf("from %v by %v: %q does not name the first day kept", tc.from, tc.dims.List(), err)
		}
	}
}

// TestDetailHorizonPassesDuringRead: when the business day turns while a
// report by store reads its first day, the last day the detail is kept
// for, that day's purge may have begun under it; the report is refused
// as one asked a moment later would be, not answered short.
func TestDetailHorizonPassesDuringRead(t *testing.T) {
	rows := []storage.Aggregate{{Counts: storage.Counts{Served: 3}}}
	before := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	now := before
	s, err := New(&fakeEvents{rows: rows}, fakeCatalog{}, time.UTC, KeepDetail(7, func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	first := storage.DayOf(before) - 6 // 2026-11-24, the first day kept until midnight
	q := Query{From: first, To: first + 3, GroupBy: storage.DimsOf(storage.DimStore)}
	if rep, err := s.Report(context.Background(), admin, q); err != nil || rep.Totals.Served != 3 {
		t.Fatalf("before midnight: %v, %+v", err, rep)
	}
	s.events = &fakeEvents{rows: rows, during: func() { now = before.Add(2 * time.Second) }}
	_, err = s.Report(context.Background(), admin, q)
	if campaigns.ErrorCode(err) != campaigns.Invalid || !strings.Contains(err.Error(), "2026-11-25 or later") {
		t.Fatalf("midnight during the read: err %v, want invalid_argument naming 2026-11-25", err)
	}
	// By campaign, the day is kept for good: the same turn changes nothing.
	now = before
	q.GroupBy = storage.DimsOf(storage.DimCampaign)
	if rep, err := s.Report(context.Background(), admin, q); err != nil || rep.Totals.Served != 3 {
		t.Fatalf("by campaign across midnight: %v, %+v", err, rep)
	}
}

func TestRenderings(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Tokyo")
	day := storage.DayOf(time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC))
	rep := &Report{From: day, To: day, Location: loc, GroupBy: storage.DimsOf(storage.DimDay, storage.DimHour, storage.DimStore),
		Rows: []Row{
			{Key: storage.AggKey{Day: day, Hour: 7, AdvertiserID: "adv_1", StoreID: "s,1"}, Counts: storage.Counts{Served: 10, Impressions: 3, Clicks: 1, Visits: 2}},
			{Key: storage.AggKey{Day: day, Hour: 23, AdvertiserID: "adv_1", StoreID: `店 "2"`}, Counts: storage.Counts{Served: 1}},
		}}
	rep.Totals = storage.Counts{Served: 11, Impressions: 3, Clicks: 1, Visits: 2}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got struct {
		GroupBy []string         `json:"group_by"`
		Rows    []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, js.Bytes())
	}
	if strings.Join(got.GroupBy, ",") != "day,hour,store" || len(got.Rows) != 2 {
		t.Fatalf("json: %s", js.Bytes())
	}
	first := got.Rows[0]
	if first["day"] != "2026-11-03" || first["hour"] != 7.0 || first["advertiser_id"] != "adv_1" || first["store_id"] != "s,1" ||
		first["ctr"] != 0.333333 || first["visit_rate"] != 0.666667 {
		t.Fatalf("first row %v", first)
	}
	if got.Rows[1]["store_id"] != `店 "2"` || got.Rows[1]["ctr"] != 0.0 {
		t.Fatalf("second row %v", got.Rows[1])
	}

	var c bytes.Buffer
	if err := rep.WriteCSV(&c, true); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.String(), UTF8BOM+"day,hour,advertiser_id,store_id,served,") {
		t.Fatalf("csv: %q", c.String())
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(c.String(), UTF8BOM))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"day", "hour", "advertiser_id", "store_id", "served", "impressions", "clicks", "ctr", "navigations", "visits", "visit_rate"},
		{"2026-11-03", "7", "adv_1", "s,1", "10", "3", "1", "0.333333", "0", "2", "0.666667"},
		{"2026-11-03", "23", "adv_1", `店 "2"`, "1", "0", "0", "0", "0", "0", "0"},
	}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Fatalf("csv records\n got %q\nwant %q", recs, want)
	}

	if err := rep.WriteGeoJSON(&bytes.Buffer{}); err == nil {
		t.Fatal("a report not grouped by cell rendered as GeoJSON")
	}
}

// TestCSVDefusesFormulas: an ID a spreadsheet would run as a formula
// ("-1-1" a sum, "-A1" a reference) is written with a leading "'", as the
// dashboard's CSV does; plain numbers and ordinary IDs are left alone.
func TestCSVDefusesFormulas(t *testing.T) {
	for _, tt := range []struct{ give, want string }{
		{"-1-1", "'-1-1"}, {"-A1", "'-A1"}, {"-", "'-"}, {"-1", "-1"}, {"-1.5", "-1.5"}, {"12", "12"},
		{"cmp_1", "cmp_1"}, {"=1+1", "'=1+1"}, {"@SUM(A1)", "'@SUM(A1)"}, {"+1", "'+1"}, {"-1,2", `"'-1,2"`}, {"1.", "1."},
	} {
		if got := string(appendCSVField(nil, tt.give)); got != tt.want {
			t.Errorf("appendCSVField(%q) = %s, want %s", tt.give, got, tt.want)
		}
	}
	s := newService(t, []storage.Aggregate{{
		AggKey: storage.AggKey{Day: 20400, AdvertiserID: "adv", CampaignID: "-1-1", StoreID: "-A1"},
		Counts: storage.Counts{Impressions: 1},
	}})
	rep, err := s.Report(context.Background(), admin, Query{From: 20400, To: 20400, GroupBy: storage.DimsOf(storage.DimCampaign, storage.DimStore)})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\n'-1-1,") || !strings.Contains(b.String(), ",'-A1,") {
		t.Fatalf("csv: %q", b.String())
	}
}
