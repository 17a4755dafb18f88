package campaigns

import (
	"fmt"
	"strings"
	"time"
)

// Store is a shop that carries an advertiser's products: the walking target
// of an ad. Its ID is the advertiser's own; the pair (advertiser, ID) is
// unique across navad.
type Store struct {
	ID           string   `json:"id"`
	AdvertiserID string   `json:"advertiser_id,omitempty"`
	Name         string   `json:"name"`
	Address      string   `json:"address"`
	Lat          float64  `json:"lat"`
	Lng          float64  `json:"lng"`
	Products     []string `json:"products"`
	// Hours are the weekly opening hours; empty means always open.
	Hours Hours `json:"hours"`
}

// Validate checks every field and returns an Invalid *Error naming each bad
// one, or nil.
func (s *Store) Validate() error {
	var p Problems
	s.check(&p)
	return p.Err()
}

func (s *Store) check(p *Problems) {
	checkID(p, "id", s.ID, true)
	checkText(p, "name", s.Name, MaxNameLen, true)
	checkText(p, "address", s.Address, MaxTextLen, false)
	CheckLatLng(p, "lat", "lng", s.Lat, s.Lng)
	switch {
	case len(s.Products) == 0:
		p.Add("products", "must list at least one product")
	case len(s.Products) > MaxProductsStore:
		p.Add("products", "must list at most %d products", MaxProductsStore)
	default:
		for i, id := range s.Products {
			checkID(p, fmt.Sprintf("products[%d]", i), id, true)
		}
	}
	if len(s.Hours) > MaxHourRanges {
		p.Add("hours", "must have at most %d ranges", MaxHourRanges)
	} else if _, hp := s.Hours.Compile(); hp.Len() > 0 {
		p.Merge("hours", hp)
	}
}

// RowProblem describes everything wrong with one row of an upload as a single
// message ("lat must be between -90 and 90; products must list…"), or "".
func (s *Store) RowProblem() string {
	var p Problems
	s.check(&p)
	if p.Len() == 0 {
		return ""
	}
	parts := make([]string, 0, p.Len())
	for _, d := range p.details {
		parts = append(parts, d.Field+" "+d.Message)
	}
	return strings.Join(parts, "; ")
}

// HasProduct reports whether the store lists product.
func (s *Store) HasProduct(product string) bool {
	for _, p := range s.Products {
		if p == product {
			return true
		}
	}
	return false
}

// StockUpdate is one row of a point-of-sale feed: whether a store has a
// product in stock now.
//
// AsOf, when given, is when the point-of-sale system saw that: a row older
// than the last applied row with a time for its (store, product) is stale
// and skipped, so that a batch delivered late (a retried request, a queue
// that reorders) does not undo a newer one. A row without it is applied as
// it arrives, as before, and forgets the time kept.
type StockUpdate struct {
	StoreID   string     `json:"store_id"`
	ProductID string     `json:"product_id"`
	InStock   *bool      `json:"in_stock"`
	Quantity  *int64     `json:"quantity,omitempty"`
	AsOf      *time.Time `json:"as_of,omitempty"`
}

// earliestAsOf is the earliest time a stock row may carry: before it, the
// point-of-sale system's clock is wrong.
var earliestAsOf = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxAsOfAhead is how far past the server's clock a stock row's as_of may
// be: clocks disagree by seconds, not minutes, and a row dated ahead would
// hold its (store, product) against every row until then.
const MaxAsOfAhead = 5 * time.Minute

// AsOfMillis returns the row's as_of in Unix milliseconds, or 0 when it
// has none (RowProblem refuses the times it would confuse with that).
func (u StockUpdate) AsOfMillis() int64 {
	if u.AsOf == nil {
		return 0
	}
	return u.AsOf.UnixMilli()
}

// Available reports whether the row says the product can be bought: in_stock
// when given, otherwise a positive quantity.
func (u StockUpdate) Available() bool {
	if u.InStock != nil {
		return *u.InStock
	}
	return u.Quantity != nil && *u.Quantity > 0
}

// RowProblem describes what is wrong with the row, received at now, or "".
func (u StockUpdate) RowProblem(now time.Time) string {
	var p Problems
	checkID(&p, "store_id", u.StoreID, true)
	checkID(&p, "product_id", u.ProductID, true)
	if u.InStock == nil && u.Quantity == nil {
		p.Add("in_stock", "is required (or give quantity)")
	}
	if u.Quantity != nil && *u.Quantity < 0 {
		p.Add("quantity", "must not be negative")
	}
	if u.AsOf != nil {
		if u.AsOf.Before(earliestAsOf) {
			p.Add("as_of", "must be after 2000-01-01")
		} else if u.AsOf.After(now.Add(MaxAsOfAhead)) {
			p.Add("as_of", "is %s ahead of the server's clock (at most %s)", u.AsOf.Sub(now).Round(time.Second), MaxAsOfAhead)
		}
	}
	if p.Len() == 0 {
		return ""
	}
	parts := make([]string, 0, p.Len())
	for _, d := range p.details {
		parts = append(parts, d.Field+" "+d.Message)
	}
	return strings.Join(parts, "; ")
}

// StockKey names one product at one store of an advertiser.
type StockKey struct {
	AdvertiserID string
	StoreID      string
	ProductID    string
}

// CheckStores validates an upload: every row, and that no store ID appears
// twice. It returns an Invalid *Error listing every bad row, or nil. Row
// numbers come from rowNumbers when given (a CSV line, say), else count from 1.
func CheckStores(stores []Store, rowNumbers []int) error {
	return CheckUpload("", stores, rowNumbers)
}

// CheckUpload is CheckStores for an upload to advertiserID: a row whose
// advertiser_id is set and names another advertiser is bad too, since it
// would be stored under advertiserID. An empty advertiserID checks no row's.
func CheckUpload(advertiserID string, stores []Store, rowNumbers []int) error {
	var p Problems
	seen := make(map[string]int, len(stores))
	for i := range stores {
		row := i + 1
		if i < len(rowNumbers) {
			row = rowNumbers[i]
		}
		msg := stores[i].RowProblem()
		if a := stores[i].AdvertiserID; advertiserID != "" && a != "" && a != advertiserID {
			if msg != "" {
				msg += "; "
			}
			msg += fmt.Sprintf("advertiser_id must be %q, the advertiser of this upload, or left out", advertiserID)
		}
		if first, dup := seen[stores[i].ID]; dup && stores[i].ID != "" {
			if msg != "" {
				msg += "; "
			}
			msg += fmt.Sprintf("id %q repeats row %d", stores[i].ID, first)
		} else {
			seen[stores[i].ID] = row
		}
		if msg != "" {
			p.AddRow(row, "%s", msg)
		}
	}
	return p.Err()
}
