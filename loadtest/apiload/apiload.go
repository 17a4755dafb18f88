// Package apiload loads a world written by dataset.WriteFiles into a
// running navad through its public API only, as tenants would: the admin
// creates the agencies, advertisers and publishers; then each advertiser's
// stores are uploaded, its campaigns created and its stock reported. It is
// the slow, faithful path (the fast one is dataset.LoadCatalog).
package apiload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/loadtest/dataset"
)

// Keys is what a load learned from the server: the ID and API key it gave
// each generated account. It is saved as keys.json next to the manifest.
type Keys struct {
	BaseURL string            `json:"base_url"`
	IDs     map[string]string `json:"ids"`  // generated ID → server ID
	Keys    map[string]string `json:"keys"` // generated ID → API key
}

// Options tune a load.
type Options struct {
	// Parallel is how many uploads run at once (default 2).
	Parallel int
	// Progress, if set, receives a line after each step.
	Progress func(string)
	// Client defaults to a client without a timeout (uploads are large).
	Client *http.Client
}

// Load creates everything in dir's manifest on the server at baseURL with
// the admin key, and writes dir/keys.json.
func Load(ctx context.Context, baseURL, adminKey, dir string, opt Options) (*Keys, error) {
	m, err := dataset.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if opt.Parallel < 1 {
		opt.Parallel = 2
	}
	if opt.Client == nil {
		opt.Client = &http.Client{}
	}
	say := func(format string, args ...any) {
		if opt.Progress != nil {
			opt.Progress(fmt.Sprintf(format, args...))
		}
	}
	l := &loader{base: strings.TrimRight(baseURL, "/"), admin: adminKey, client: opt.Client}
	keys := &Keys{BaseURL: l.base, IDs: map[string]string{}, Keys: map[string]string{}}

	for _, a := range m.Accounts {
		body := map[string]string{"type": string(a.Type), "name": a.Name}
		if a.AgencyID != "" {
			body["agency_id"] = keys.IDs[a.AgencyID]
		}
		var out struct {
			ID     string `json:"id"`
			APIKey string `json:"api_key"`
		}
		if err := l.do(ctx, http.MethodPost, "/v1/accounts", "application/json", jsonBody(body), &out); err != nil {
			return nil, fmt.Errorf("create account %s: %w", a.ID, err)
		}
		keys.IDs[a.ID], keys.Keys[a.ID] = out.ID, out.APIKey
	}
	say("%d accounts", len(m.Accounts))

	contentType := map[string]string{".json": "application/json", ".csv": "text/csv"}
	n := 0
	err = parallel(ctx, opt.Parallel, m.Stores, func(f dataset.File) error {
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			return err
		}
		path := "/v1/stores?advertiser_id=" + url.QueryEscape(keys.IDs[f.Advertiser])
		return l.do(ctx, http.MethodPut, path, contentType[filepath.Ext(f.Path)], b, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("upload stores: %w", err)
	}
	for _, f := range m.Stores {
		n += f.Rows
	}
	say("%d stores in %d uploads", n, len(m.Stores))

	n = 0
	err = parallel(ctx, opt.Parallel, m.Campaigns, func(f dataset.File) error {
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			return err
		}
		var cs []campaigns.Campaign
		if err := json.Unmarshal(b, &cs); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		for i := range cs {
			c := &cs[i]
			c.AdvertiserID = keys.IDs[c.AdvertiserID]
			for j, p := range c.Publishers {
				c.Publishers[j] = keys.IDs[p]
			}
			if err := l.do(ctx, http.MethodPost, "/v1/campaigns", "application/json", jsonBody(c), nil); err != nil {
				return fmt.Errorf("campaign %s: %w", c.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create campaigns: %w", err)
	}
	for _, f := range m.Campaigns {
		n += f.Rows
	}
	say("%d campaigns", n)

	n = 0
	err = parallel(ctx, opt.Parallel, m.Stock, func(f dataset.File) error {
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			return err
		}
		path := "/v1/inventory?advertiser_id=" + url.QueryEscape(keys.IDs[f.Advertiser])
		return l.do(ctx, http.MethodPut, path, "application/json", b, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("report stock: %w", err)
	}
	for _, f := range m.Stock {
		n += f.Rows
	}
	say("%d out-of-stock rows", n)

	b, _ := json.MarshalIndent(keys, "", " ")
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), b, 0o600); err != nil {
		return nil, fmt.Errorf("write keys: %w", err)
	}
	return keys, nil
}

// ReadKeys reads a keys.json that Load wrote.
func ReadKeys(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	var k Keys
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	return &k, nil
}

type loader struct {
	base, admin string
	client      *http.Client
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v) // plain structs and maps: cannot fail
	return b
}

// do sends one admin request and decodes a 2xx JSON answer into out (if not
// nil); any other status is an error quoting the API's error body.
func (l *loader) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+l.admin)
	req.Header.Set("Content-Type", contentType)
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		if len(b) > 500 {
			b = append(b[:500], "…"...)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// parallel runs fn on every item with at most n at once and returns the
// first error; after an error no new item starts.
func parallel[T any](ctx context.Context, n int, items []T, fn func(T) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(it) })
	}
	return g.Wait()
}
