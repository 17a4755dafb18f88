package apiload_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/config"
	"github.com/navad/navad/internal/httpapi"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/loadtest/apiload"
	"github.com/navad/navad/loadtest/dataset"
)

// server wires navad's parts as cmd/navad does, on an httptest server.
func server(t *testing.T) (*httptest.Server, *serving.Index) {
	t.Helper()
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default()
	ix := serving.NewIndex()
	eng, err := serving.NewEngine(ix, cfg.Location(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeys(st, dataset.AdminKey)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New(st, ix, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Deps{Catalog: cat, Engine: eng, Keys: keys, Logger: slog.New(slog.DiscardHandler)}, httpapi.Options{
		MaxBodyBytes: cfg.MaxBodyBytes, MaxJSONBodyBytes: cfg.MaxJSONBodyBytes, MaxUploadRows: cfg.MaxUploadRows,
		MaxStockRows: cfg.MaxStockRows, DecisionTimeout: cfg.DecisionTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, ix
}

func TestLoadThroughTheAPI(t *testing.T) {
	w, err := dataset.Generate(dataset.Config{Seed: 2, Stores: 3_000, Advertisers: 30, Agencies: 3, Publishers: 2, Products: 120, Campaigns: 90})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []dataset.Format{dataset.JSON, dataset.CSV} {
		t.Run(string(format), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := dataset.WriteFiles(dir, w, format); err != nil {
				t.Fatal(err)
			}
			ts, ix := server(t)
			var lines []string
			keys, err := apiload.Load(context.Background(), ts.URL, dataset.AdminKey, dir, apiload.Options{
				Progress: func(s string) { lines = append(lines, s) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != 4 || len(keys.IDs) != len(w.Agencies)+len(w.Advertisers)+len(w.Publishers) {
				t.Fatalf("progress %q; %d accounts", lines, len(keys.IDs))
			}
			want, err := dataset.BuildIndex(w)
			if err != nil {
				t.Fatal(err)
			}
			got, exp := ix.Snapshot(), want.Snapshot()
			if got.Stores() != exp.Stores() || got.Campaigns() != exp.Campaigns() || got.Offers() != exp.Offers() {
				t.Errorf("through the API: %d stores, %d campaigns, %d offers; want %d, %d, %d",
					got.Stores(), got.Campaigns(), got.Offers(), exp.Stores(), exp.Campaigns(), exp.Offers())
			}
			back, err := apiload.ReadKeys(filepath.Join(dir, "keys.json"))
			if err != nil || back.Keys[w.Publishers[0].ID] != keys.Keys[w.Publishers[0].ID] {
				t.Fatalf("keys.json: %v", err)
			}
			// The publisher key the server gave works for decisions.
			req, _ := http.NewRequest(http.MethodGet, ts.URL+(&dataset.Request{Lat: 35.69, Lng: 139.70, Query: "居酒屋", Mode: "walk", UID: "u1"}).Path(), nil)
			req.Header.Set("Authorization", "Bearer "+keys.Keys[w.Publishers[0].ID])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /v1/ads with the loaded publisher key: %s", resp.Status)
			}
		})
	}
}

func TestLoadReportsAPIErrors(t *testing.T) {
	w, err := dataset.Generate(dataset.Config{Seed: 2, Stores: 1_000, Advertisers: 20, Publishers: 1, Products: 20, Campaigns: 20})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := dataset.WriteFiles(dir, w, dataset.JSON); err != nil {
		t.Fatal(err)
	}
	ts, _ := server(t)
	_, err = apiload.Load(context.Background(), ts.URL, "not-the-admin-key-at-all", dir, apiload.Options{})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a bad admin key: %v, want a 401", err)
	}
}
