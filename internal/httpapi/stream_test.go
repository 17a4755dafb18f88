package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// storesFailAfter is the real store whose store listing fails after it has
// handed out n stores, as a Redis listing does when the connection breaks
// between two of its reads.
type storesFailAfter struct {
	storage.Catalog
	n int
}

func (s storesFailAfter) Stores(ctx context.Context, advertiserID string, fn func(*campaigns.Store) bool) error {
	i := 0
	var stopped bool
	err := s.Catalog.Stores(ctx, advertiserID, func(st *campaigns.Store) bool {
		if i == s.n {
			stopped = true
			return false
		}
		i++
		return fn(st)
	})
	if stopped {
		return errors.New("list stores: connection reset")
	}
	return err
}

// TestStoreListCutShortIsAnError: when the store fails partway through
// GET /v1/stores, after its 200 and the first stores are sent, the client
// sees a broken answer, never a well-formed list that is silently short.
func TestStoreListCutShortIsAnError(t *testing.T) {
	failing := storesFailAfter{n: 300} // some 40 KB: past net/http's buffer, so the 200 and the first stores are sent
	e := newEnvWith(t, envConfig{wrap: func(c storage.Catalog) storage.Catalog {
		failing.Catalog = c
		return failing
	}})
	adv := e.do("POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Brewer"})
	advKey := adv.json(t)["api_key"].(string)

	hs := httptest.NewServer(e.handler)
	defer hs.Close()
	list := func() (int, []byte, error) {
		req, err := http.NewRequest("GET", hs.URL+"/v1/stores", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+advKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}

	// Two stores: the listing ends before it fails, and the answer is whole.
	var stores []map[string]any
	for i := range 2 {
		stores = append(stores, map[string]any{"id": fmt.Sprintf("s%d", i), "name": "店", "lat": 35.69, "lng": 139.70, "products": []string{"beer"}})
	}
	if r := e.do("PUT", "/v1/stores", advKey, stores); r.Status != 200 {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	// A query Go cannot read is refused, not read as no advertiser_id.
	if r := e.do("GET", "/v1/stores?advertiser_id=%zz", advKey, nil); r.Status != 400 || r.errorCode(t) != "invalid_argument" {
		t.Fatalf("unreadable query: %d %s", r.Status, r.Body)
	}
	status, body, err := list()
	var whole struct{ Stores []json.RawMessage }
	if err != nil || status != 200 || json.Unmarshal(body, &whole) != nil || len(whole.Stores) != 2 {
		t.Fatalf("two stores: %d %v %s", status, err, body)
	}

	// 400: the store fails after 300; the client must not get a list.
	for i := 2; i < 400; i++ {
		stores = append(stores, map[string]any{"id": fmt.Sprintf("s%d", i), "name": "店", "lat": 35.69, "lng": 139.70, "products": []string{"beer"}})
	}
	if r := e.do("PUT", "/v1/stores", advKey, stores); r.Status != 200 {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	status, body, err = list()
	var short struct{ Stores []json.RawMessage }
	if err == nil && json.Unmarshal(body, &short) == nil {
		t.Fatalf("a listing that failed after %d stores reached the client as a whole list of %d (status %d): %s", failing.n, len(short.Stores), status, body)
	}
	if err == nil || status != 200 || len(body) < 4096 {
		t.Fatalf("got status %d, %d bytes, error %v; want the 200 and some stores, then a transport error", status, len(body), err)
	}
}
