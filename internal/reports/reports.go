// Package reports answers GET /v1/reports and its GeoJSON map: the counts
// of storage.Events summed by the dimensions a caller groups by, limited to
// what the caller may see, and rendered as JSON, CSV or a GeoJSON
// FeatureCollection of H3 hexagons.
//
// Who sees what (API.md): admin everything; an advertiser its own
// campaigns; an agency its advertisers' campaigns; a publisher the traffic
// it sent. Filters narrow that further; naming an advertiser or publisher
// outside it is PermissionDenied, while a campaign outside it simply has
// no rows (so that campaign IDs do not leak).
package reports

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/storage"
)

// Limits of a report.
const (
	// MaxDays is the longest period one report covers.
	MaxDays = 366
	// MaxRows is the most rows one report returns; a query that would
	// give more is Invalid, so that one request cannot exhaust memory.
	MaxRows = 1_000_000
)

// Service builds reports. It is safe for concurrent use.
type Service struct {
	events  storage.Events
	catalog storage.Catalog
	loc     *time.Location
	maxRows int // MaxRows; smaller in tests
	// detailDays is how many business days the aggregates by store and
	// cell are kept (0: for good), by the clock now.
	detailDays int
	now        func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// KeepDetail tells the Service that the aggregates by store and by cell
// are kept for days business days by the clock now (storage.DetailFrom;
// the tracking service purges older ones): a report grouped by store or
// cell that begins earlier is Invalid, rather than short of the days
// purged.
func KeepDetail(days int, now func() time.Time) Option {
	return func(s *Service) { s.detailDays, s.now = days, now }
}

// New returns a Service reading counts from events and accounts (to find an
// agency's advertisers) from catalog; report days are days in loc.
func New(events storage.Events, catalog storage.Catalog, loc *time.Location, opts ...Option) (*Service, error) {
	if events == nil || catalog == nil || loc == nil {
		return nil, errors.New("new reports: events, catalog and location are required")
	}
	s := &Service{events: events, catalog: catalog, loc: loc, maxRows: MaxRows, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Location returns the business time zone of report days.
func (s *Service) Location() *time.Location { return s.loc }

// Query is what a caller asks for. A nil filter does not filter.
type Query struct {
	From, To      storage.Day // inclusive, in the business time zone
	GroupBy       storage.Dims
	CampaignIDs   []string
	AdvertiserIDs []string
	PublisherIDs  []string
}

// Row is one group of a report: the key fields of the grouped dimensions
// (a store's also names its advertiser) and the counts.
type Row struct {
	Key storage.AggKey
	storage.Counts
}

// Report is a finished report, rows ordered by their keys in the order of
// the dimensions (day, hour, advertiser, campaign, publisher, store, cell).
type Report struct {
	From, To storage.Day
	Location *time.Location
	GroupBy  storage.Dims
	Rows     []Row
	Totals   storage.Counts
}

// Ratio returns num/den, or 0 when den is 0: CTR is clicks per impression,
// the visit rate visits per impression.
func Ratio(num, den uint64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

// Report builds the report q asks for, as p may see it. Invalid for a bad
// period (one by store or cell beginning before the detail kept) or more
// than MaxRows rows; PermissionDenied for a filter naming an
// advertiser or publisher p may not see.
func (s *Service) Report(ctx context.Context, p *auth.Principal, q Query) (*Report, error) {
	if q.To < q.From {
		return nil, campaigns.Errorf(campaigns.Invalid, "from must not be after to")
	}
	if q.To-q.From >= MaxDays {
		return nil, campaigns.Errorf(campaigns.Invalid, "a report covers at most %d days", MaxDays)
	}
	if err := s.checkDetail(q); err != nil {
		return nil, err
	}
	aq, err := s.visible(ctx, p, q)
	if err != nil {
		return nil, err
	}
	rep := &Report{From: q.From, To: q.To, Location: s.loc, GroupBy: q.GroupBy}
	var g grouper
	g.init(q.GroupBy, q.From, s.maxRows)
	err = s.events.Aggregates(ctx, aq, func(a *storage.Aggregate) bool {
		rep.Totals.Add(a.Counts)
		return g.add(a)
	})
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	// The day may have turned while the counts were read, and the purge
	// of the detail then begun on the first day asked for: its counts
	// could be short. Refused as if asked a moment later, never short.
	if err := s.checkDetail(q); err != nil {
		return nil, err
	}
	rows, ok := g.rows()
	if !ok {
		return nil, campaigns.Errorf(campaigns.Invalid, "the report would have more than %d rows; ask for fewer days or dimensions, or filter", s.maxRows)
	}
	rep.Rows = rows
	return rep, nil
}

// checkDetail refuses a report by store or cell that begins before the
// first day whose counts by store and cell are kept, by the clock now.
func (s *Service) checkDetail(q Query) error {
	if s.detailDays > 0 && (q.GroupBy.Has(storage.DimStore) || q.GroupBy.Has(storage.DimCell)) {
		if first := storage.DetailFrom(s.now(), s.loc, s.detailDays); q.From < first {
			return campaigns.Errorf(campaigns.Invalid,
				"counts by store and by cell are kept for %d days: from must be %s or later for a report by store or cell", s.detailDays, first)
		}
	}
	return nil
}

// grouper sums aggregate rows by the grouped dimensions, by sorting rather
// than hashing: a month of 10,000 campaigns by day is 300,000 groups, and a
// hash table of that size spends its time in cache misses, while a sort of
// compact keys streams through memory. Each string of a key becomes a small
// number from a per-dimension dictionary, and a key packs into three
// integers. Rows are buffered and merged when the buffer fills, so memory
// stays proportional to the groups (at most MaxRows), not to the rows read.
type grouper struct {
	dims                storage.Dims
	from                storage.Day
	adv, cmp, pub, stor dict
	buf                 []groupRow
	limit               int // merge when buf reaches it
	maxRows             int
	tooMany             bool
	sorted              int // rows the merges of add have sorted: the work of grouping
}

type groupRow struct {
	k packedKey
	c storage.Counts
}

// packedKey orders and identifies a group: a holds the day (as an offset
// from the report's first day, 9 bits), hour (5), advertiser (21) and
// campaign (21); b the publisher (21) and store (21); c the cell. String
// dimensions hold dictionary IDs while rows are read, and sort ranks once
// the dictionaries are complete.
type packedKey struct{ a, b, c uint64 }

const (
	idBits = 21
	maxIDs = 1 << idBits // more distinct values than MaxRows can show
)

func comparePacked(x, y *packedKey) int {
	if c := cmp.Compare(x.a, y.a); c != 0 {
		return c
	}
	if c := cmp.Compare(x.b, y.b); c != 0 {
		return c
	}
	return cmp.Compare(x.c, y.c)
}

func pack(day, hour, adv, cmpID, pub, stor uint64, cell uint64) packedKey {
	return packedKey{
		a: day<<(5+2*idBits) | hour<<(2*idBits) | adv<<idBits | cmpID,
		b: pub<<idBits | stor,
		c: cell,
	}
}

func (k *packedKey) unpack() (day, hour, adv, cmpID, pub, stor uint64) {
	const m = maxIDs - 1
	return k.a >> (5 + 2*idBits), k.a >> (2 * idBits) & 31, k.a >> idBits & m, k.a & m, k.b >> idBits & m, k.b & m
}

// dict numbers distinct strings from 1 (0 is the empty string).
type dict struct {
	ids  map[string]uint32
	vals []string
}

func (d *dict) id(s string) uint32 {
	if s == "" {
		return 0
	}
	if id, ok := d.ids[s]; ok {
		return id
	}
	if d.ids == nil {
		d.ids = make(map[string]uint32)
		d.vals = []string{""}
	}
	id := uint32(len(d.vals))
	d.ids[s] = id
	d.vals = append(d.vals, s)
	return id
}

// ranks returns, for each ID, the position of its string in sorted order,
// and the strings in that order.
func (d *dict) ranks() ([]uint64, []string) {
	if len(d.vals) == 0 {
		return []uint64{0}, []string{""}
	}
	sorted := slices.Clone(d.vals)
	slices.Sort(sorted)
	ranks := make([]uint64, len(d.vals))
	for id, v := range d.vals {
		pos, _ := slices.BinarySearch(sorted, v)
		ranks[id] = uint64(pos)
	}
	return ranks, sorted
}

func (g *grouper) init(dims storage.Dims, from storage.Day, maxRows int) {
	g.dims, g.from, g.limit, g.maxRows = dims, from, 1<<16, maxRows
}

// add buffers a under its group's key; it reports false once the report
// has more than MaxRows groups.
func (g *grouper) add(a *storage.Aggregate) bool {
	k := a.AggKey.Project(g.dims)
	adv, cmpID, pub, stor := g.adv.id(k.AdvertiserID), g.cmp.id(k.CampaignID), g.pub.id(k.PublisherID), g.stor.id(k.StoreID)
	if max(adv, cmpID, pub, stor) >= maxIDs {
		g.tooMany = true
		return false
	}
	if len(g.buf) == cap(g.buf) { // double: append grows big slices by a quarter
		g.buf = append(make([]groupRow, 0, max(2*cap(g.buf), 1024)), g.buf...)
	}
	g.buf = append(g.buf, groupRow{
		k: pack(uint64(k.Day-g.from), uint64(k.Hour), uint64(adv), uint64(cmpID), uint64(pub), uint64(stor), k.Cell),
		c: a.Counts,
	})
	if len(g.buf) >= g.limit {
		g.sorted += len(g.buf)
		g.buf = merge(g.buf)
		if len(g.buf) > g.maxRows {
			g.tooMany = true
			return false
		}
		if len(g.buf) > g.limit/2 {
			// Mostly distinct groups: merging again soon would sort the
			// same rows over and over. Buffer up to the row limit, and
			// at least as many rows again as there are groups: with
			// nearly maxRows groups, a limit of maxRows+1 left room for
			// a few rows only, and every few rows sorted all the groups
			// again (minutes for a report near the limit). With room for
			// as many rows as groups, a merge sorts at most twice the
			// rows added since the last, and the buffer holds at most
			// 2*maxRows rows.
			g.limit = max(g.limit, g.maxRows+1, 2*len(g.buf))
		}
	}
	return true
}

// merge sorts rows by key and sums rows with equal keys, in place.
func merge(rows []groupRow) []groupRow {
	slices.SortFunc(rows, func(x, y groupRow) int { return comparePacked(&x.k, &y.k) })
	out := rows[:0]
	for _, r := range rows {
		if n := len(out); n > 0 && out[n-1].k == r.k {
			out[n-1].c.Add(r.c)
			continue
		}
		out = append(out, r)
	}
	return out
}

// rows returns the groups in key order: day, hour, advertiser, campaign,
// publisher, store, cell. It reports false for more than MaxRows groups.
func (g *grouper) rows() ([]Row, bool) {
	if g.tooMany {
		return nil, false
	}
	advR, advS := g.adv.ranks()
	cmpR, cmpS := g.cmp.ranks()
	pubR, pubS := g.pub.ranks()
	storR, storS := g.stor.ranks()
	for i := range g.buf { // IDs to ranks: the packed order is now the report's
		k := &g.buf[i].k
		day, hour, adv, cmpID, pub, stor := k.unpack()
		*k = pack(day, hour, advR[adv], cmpR[cmpID], pubR[pub], storR[stor], k.c)
	}
	g.buf = merge(g.buf)
	if len(g.buf) > g.maxRows {
		return nil, false
	}
	rows := make([]Row, len(g.buf))
	for i := range g.buf {
		day, hour, adv, cmpID, pub, stor := g.buf[i].k.unpack()
		rows[i] = Row{Counts: g.buf[i].c, Key: storage.AggKey{
			Day: g.from + storage.Day(day), Hour: uint8(hour), Cell: g.buf[i].k.c,
			AdvertiserID: advS[adv], CampaignID: cmpS[cmpID], PublisherID: pubS[pub], StoreID: storS[stor],
		}}
	}
	return rows, true
}

// visible turns q into the aggregate query p may run.
func (s *Service) visible(ctx context.Context, p *auth.Principal, q Query) (*storage.AggregateQuery, error) {
	aq := &storage.AggregateQuery{
		From: q.From, To: q.To, Dims: q.GroupBy,
		Campaigns: q.CampaignIDs, Advertisers: q.AdvertiserIDs, Publishers: q.PublisherIDs,
	}
	switch p.Role {
	case campaigns.Admin:
	case campaigns.Advertiser:
		if err := within("advertiser_id", q.AdvertiserIDs, []string{p.ID}); err != nil {
			return nil, err
		}
		aq.Advertisers = []string{p.ID}
	case campaigns.Agency:
		own, err := s.agencyAdvertisers(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		if err := within("advertiser_id", q.AdvertiserIDs, own); err != nil {
			return nil, err
		}
		if q.AdvertiserIDs == nil {
			aq.Advertisers = own
		}
	case campaigns.Publisher:
		if err := within("publisher_id", q.PublisherIDs, []string{p.ID}); err != nil {
			return nil, err
		}
		aq.Publishers = []string{p.ID}
	default:
		return nil, campaigns.Errorf(campaigns.PermissionDenied, "a %s key may not read reports", p.Role)
	}
	return aq, nil
}

// within checks that every requested ID is allowed.
func within(field string, requested, allowed []string) error {
	for _, id := range requested {
		if !slices.Contains(allowed, id) {
			return campaigns.Errorf(campaigns.PermissionDenied, "%s %q is not yours to report on", field, id)
		}
	}
	return nil
}

// agencyAdvertisers returns the IDs of the advertisers an agency manages,
// never nil (an agency without advertisers sees nothing).
func (s *Service) agencyAdvertisers(ctx context.Context, agencyID string) ([]string, error) {
	accts, err := s.catalog.Accounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	own := []string{}
	for _, a := range accts {
		if a.Type == campaigns.Advertiser && a.AgencyID == agencyID {
			own = append(own, a.ID)
		}
	}
	return own, nil
}
