package dataset

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/navad/navad/campaigns"
)

// Files. WriteFiles lays the world out as a tenant would send it to the
// public API (docs/API.md), one directory:
//
//	manifest.json           the config, a summary, the accounts and every file below
//	stores/<adv>-<n>.json   PUT /v1/stores?advertiser_id=<adv> bodies (or .csv)
//	campaigns/<adv>.json    a JSON array; each element is one POST /v1/campaigns body
//	stock/<adv>-<n>.json    PUT /v1/inventory?advertiser_id=<adv> bodies
//
// Account IDs in the files are the generator's (adv-001); the server assigns
// its own when the accounts are created, and the loader (package apiload)
// maps them.

// uploadRows is how many stores one upload carries: well under the API's
// default of 200,000 rows and 64 MB a body.
const uploadRows = 50_000

// Format is a store list format the API accepts.
type Format string

// Store list formats. CSV carries no opening hours (its columns are fixed by
// the API), so the JSON format is the faithful one.
const (
	JSON Format = "json"
	CSV  Format = "csv"
)

// Manifest describes a directory written by WriteFiles.
type Manifest struct {
	Config    Config               `json:"config"`
	Stats     Stats                `json:"stats"`
	Accounts  []*campaigns.Account `json:"accounts"` // agencies, then advertisers, then publishers
	Stores    []File               `json:"stores"`
	Campaigns []File               `json:"campaigns"`
	Stock     []File               `json:"stock"`
}

// File is one file of a directory: whose it is, its path relative to the
// directory, and how many rows it holds.
type File struct {
	Advertiser string `json:"advertiser"`
	Path       string `json:"path"`
	Rows       int    `json:"rows"`
}

// uploadStore is a store as uploaded: the advertiser is named in the URL.
type uploadStore struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Address  string          `json:"address,omitempty"`
	Lat      float64         `json:"lat"`
	Lng      float64         `json:"lng"`
	Products []string        `json:"products"`
	Hours    campaigns.Hours `json:"hours,omitempty"`
}

// WriteFiles writes the world into dir (created if needed) in the given
// store format and returns the manifest it also writes there.
func WriteFiles(dir string, w *World, format Format) (*Manifest, error) {
	if format != JSON && format != CSV {
		return nil, fmt.Errorf("write files: format must be json or csv, got %q", format)
	}
	for _, sub := range []string{"stores", "campaigns", "stock"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("write files: %w", err)
		}
	}
	m := &Manifest{Config: w.Config, Stats: w.Stats()}
	m.Accounts = append(m.Accounts, w.Agencies...)
	for _, a := range w.Advertisers {
		m.Accounts = append(m.Accounts, &a.Account)
	}
	m.Accounts = append(m.Accounts, w.Publishers...)

	byAdv := map[string][]*campaigns.Campaign{}
	for _, c := range w.Campaigns {
		byAdv[c.AdvertiserID] = append(byAdv[c.AdvertiserID], c)
	}
	stock := w.stockByAdvertiser()
	for _, a := range w.Advertisers {
		for part, lo := 1, 0; lo < len(a.Stores); part, lo = part+1, lo+uploadRows {
			rel := filepath.Join("stores", fmt.Sprintf("%s-%d.%s", a.ID, part, format))
			rows := a.Stores[lo:min(lo+uploadRows, len(a.Stores))]
			if err := writeStores(filepath.Join(dir, rel), rows, format); err != nil {
				return nil, err
			}
			m.Stores = append(m.Stores, File{a.ID, rel, len(rows)})
		}
		if cs := byAdv[a.ID]; len(cs) > 0 {
			rel := filepath.Join("campaigns", a.ID+".json")
			if err := writeJSON(filepath.Join(dir, rel), uploadCampaigns(cs)); err != nil {
				return nil, err
			}
			m.Campaigns = append(m.Campaigns, File{a.ID, rel, len(cs)})
		}
		rows := stock[a.ID]
		for part, lo := 1, 0; lo < len(rows); part, lo = part+1, lo+stockChunk {
			rel := filepath.Join("stock", fmt.Sprintf("%s-%d.json", a.ID, part))
			chunk := rows[lo:min(lo+stockChunk, len(rows))]
			if err := writeJSON(filepath.Join(dir, rel), chunk); err != nil {
				return nil, err
			}
			m.Stock = append(m.Stock, File{a.ID, rel, len(chunk)})
		}
	}
	if err := writeJSON(filepath.Join(dir, "manifest.json"), m); err != nil {
		return nil, err
	}
	return m, nil
}

// uploadCampaigns returns the campaigns as a client would create them: the
// times the server sets are left out.
func uploadCampaigns(cs []*campaigns.Campaign) []campaigns.Campaign {
	out := make([]campaigns.Campaign, len(cs))
	for i, c := range cs {
		out[i] = *c
		out[i].CreatedAt, out[i].UpdatedAt = time.Time{}, time.Time{}
	}
	return out
}

func writeStores(path string, stores []campaigns.Store, format Format) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write stores: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if format == CSV {
		cw := csv.NewWriter(bw)
		_ = cw.Write([]string{"id", "name", "address", "lat", "lng", "products"})
		for i := range stores {
			s := &stores[i]
			_ = cw.Write([]string{s.ID, s.Name, s.Address,
				strconv.FormatFloat(s.Lat, 'f', -1, 64), strconv.FormatFloat(s.Lng, 'f', -1, 64),
				strings.Join(s.Products, "|")})
		}
		cw.Flush()
		err = cw.Error()
	} else {
		_, _ = bw.WriteString("[\n")
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for i := range stores {
			s := &stores[i]
			if i > 0 {
				_, _ = bw.WriteString(",")
			}
			if err = enc.Encode(uploadStore{s.ID, s.Name, s.Address, s.Lat, s.Lng, s.Products, s.Hours}); err != nil {
				break
			}
		}
		_, _ = bw.WriteString("]\n")
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write stores %s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadManifest reads the manifest of a directory written by WriteFiles.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	slices.SortStableFunc(m.Accounts, func(a, b *campaigns.Account) int { return accountOrder(a) - accountOrder(b) })
	return &m, nil
}

// accountOrder creates agencies before the advertisers they manage.
func accountOrder(a *campaigns.Account) int {
	switch a.Type {
	case campaigns.Agency:
		return 0
	case campaigns.Advertiser:
		return 1
	}
	return 2
}
