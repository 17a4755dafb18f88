package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/storage/boltstore"
)

// TestKeyRotationEndToEnd: a new key without keep_old ends the old one at
// once; with keep_old both work until DELETE /v1/accounts/{id}/keys/old;
// the outcome survives a restart.
func TestKeyRotationEndToEnd(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir)
	c := client{t, "http://" + m.Addr()}
	agency := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "agency", "name": "Agency"})
	adv := c.must(201, "POST", "/v1/accounts", agency["api_key"].(string), map[string]any{"type": "advertiser", "name": "Brewer"})
	other := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": "advertiser", "name": "Rival"})
	id, k1 := adv["id"].(string), adv["api_key"].(string)
	works := func(key string) { t.Helper(); c.must(200, "GET", "/v1/accounts/"+id, key, nil) }
	refused := func(key string) { t.Helper(); c.must(401, "GET", "/v1/accounts/"+id, key, nil) }

	works(k1)
	// Rotate without keep_old: the old key stops at once.
	k2 := c.must(201, "POST", "/v1/accounts/"+id+"/keys", k1, nil)["api_key"].(string)
	refused(k1)
	works(k2)
	// Rotate keeping the old key: both work until it is revoked.
	k3 := c.must(201, "POST", "/v1/accounts/"+id+"/keys?keep_old=true", k2, nil)["api_key"].(string)
	works(k2)
	works(k3)
	c.must(204, "DELETE", "/v1/accounts/"+id+"/keys/old", k3, nil)
	refused(k2)
	works(k3)
	// The agency may rotate its advertiser's key; another tenant may not
	// even see the account; the admin key is configuration, not rotatable.
	k4 := c.must(201, "POST", "/v1/accounts/"+id+"/keys?keep_old=true", agency["api_key"].(string), nil)["api_key"].(string)
	c.must(404, "POST", "/v1/accounts/"+id+"/keys", other["api_key"].(string), nil)
	c.must(404, "DELETE", "/v1/accounts/"+id+"/keys/old", other["api_key"].(string), nil)
	c.must(400, "POST", "/v1/accounts/admin/keys", adminKey, nil)
	works(k3)
	works(k4)
	c.must(204, "DELETE", "/v1/accounts/"+id+"/keys/old", adminKey, nil)
	refused(k3)

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := startMain(t, dir)
	c = client{t, "http://" + m2.Addr()}
	for _, k := range []string{k1, k2, k3} {
		c.must(401, "GET", "/v1/accounts/"+id, k, nil)
	}
	c.must(200, "GET", "/v1/accounts/"+id, k4, nil)
}

// TestKeysAreStoredOnlyAsHashes: the data directory never holds a key,
// only its SHA-256, and that hash finds the account.
func TestKeysAreStoredOnlyAsHashes(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir)
	c := client{t, "http://" + m.Addr()}
	var keys []string
	for _, typ := range []string{"agency", "advertiser", "publisher"} {
		a := c.must(201, "POST", "/v1/accounts", adminKey, map[string]any{"type": typ, "name": typ})
		keys = append(keys, a["api_key"].(string))
		if typ == "advertiser" {
			rotated := c.must(201, "POST", "/v1/accounts/"+a["id"].(string)+"/keys?keep_old=true", a["api_key"].(string), nil)
			keys = append(keys, rotated["api_key"].(string))
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	var files [][]byte
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		files = append(files, b)
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("read data dir: %v (%d files)", err, len(files))
	}
	all := bytes.Join(files, nil)
	for _, k := range append(keys, adminKey) {
		if bytes.Contains(all, []byte(k)) {
			t.Errorf("the data directory holds the key %s…", k[:8])
		}
	}
	for _, k := range keys {
		if !bytes.Contains(all, []byte(auth.HashKey(k))) {
			t.Errorf("the data directory lacks the hash of key %s…", k[:8])
		}
	}
	// The hash is how the account is found.
	store, err := boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, k := range keys {
		if _, err := store.AccountByKeyHash(context.Background(), auth.HashKey(k)); err != nil {
			t.Errorf("no account by the hash of key %s…: %v", k[:8], err)
		}
	}
}
