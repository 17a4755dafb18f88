package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

var jst = time.FixedZone("JST", 9*60*60)

func account(id string, typ campaigns.Role, hashes ...string) *campaigns.Account {
	return &campaigns.Account{
		ID:        id,
		Type:      typ,
		Name:      "アカウント " + id,
		CreatedAt: time.Date(2026, 11, 1, 9, 30, 15, 123456789, jst),
		KeyHashes: hashes,
	}
}

var accountTests = []test{
	{name: "CreateAndGet", run: testAccountCreateAndGet},
	{name: "CreateConflict", run: testAccountCreateConflict},
	{name: "NotFound", run: testAccountNotFound},
	{name: "ByKeyHash", run: testAccountByKeyHash},
	{name: "ListOrderedByID", run: testAccountList},
	{name: "SetKeysRotation", run: testAccountKeyRotation},
	{name: "SetKeysConflict", run: testAccountSetKeysConflict},
	{name: "SetKeysNotFound", run: testAccountSetKeysNotFound},
	{name: "UpdateKeysAtomic", run: testAccountUpdateKeysAtomic},
	{name: "UpdateKeysChangeError", run: testAccountUpdateKeysChangeError},
	{name: "ReturnsCopies", run: testAccountCopies},
}

func testAccountCreateAndGet(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	agency := account("agc_1", campaigns.Agency, "hash-agency")
	adv := account("adv_1", campaigns.Advertiser, "hash-adv-1", "hash-adv-2")
	adv.AgencyID = agency.ID
	pub := account("pub_1", campaigns.Publisher) // no keys yet
	pub.CreatedAt = time.Time{}
	for _, a := range []*campaigns.Account{agency, adv, pub} {
		must(t, c.CreateAccount(ctx, a))
	}
	for _, want := range []*campaigns.Account{agency, adv, pub} {
		got, err := c.Account(ctx, want.ID)
		must(t, err)
		wantAccount(t, got, want)
	}
}

func testAccountCreateConflict(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	existing := account("adv_1", campaigns.Advertiser, "hash-a", "hash-b")
	must(t, c.CreateAccount(ctx, existing))

	tests := []struct {
		name string
		give *campaigns.Account
	}{
		{"same id", account("adv_1", campaigns.Advertiser, "hash-fresh")},
		{"same id no keys", account("adv_1", campaigns.Agency)},
		{"key hash in use", account("adv_2", campaigns.Advertiser, "hash-b")},
		{"one of several hashes in use", account("adv_3", campaigns.Advertiser, "hash-fresh", "hash-a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, c.CreateAccount(ctx, tt.give), campaigns.Conflict)
			// Nothing of the refused account was written.
			if tt.give.ID != existing.ID {
				_, err := c.Account(ctx, tt.give.ID)
				wantCode(t, err, campaigns.NotFound)
			}
			_, err := c.AccountByKeyHash(ctx, "hash-fresh")
			wantCode(t, err, campaigns.NotFound)
			for _, h := range existing.KeyHashes {
				got, err := c.AccountByKeyHash(ctx, h)
				must(t, err)
				wantAccount(t, got, existing)
			}
		})
	}
}

func testAccountNotFound(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.CreateAccount(ctx, account("adv_1", campaigns.Advertiser, "hash-a")))
	for _, id := range []string{"adv_2", "adv", "adv_1x", ""} {
		_, err := c.Account(ctx, id)
		wantCode(t, err, campaigns.NotFound)
	}
	for _, h := range []string{"hash-b", "hash", "adv_1", ""} {
		_, err := c.AccountByKeyHash(ctx, h)
		wantCode(t, err, campaigns.NotFound)
	}
}

func testAccountByKeyHash(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	a := account("adv_1", campaigns.Advertiser, "hash-a1", "hash-a2")
	b := account("pub_1", campaigns.Publisher, "hash-b1")
	must(t, c.CreateAccount(ctx, a))
	must(t, c.CreateAccount(ctx, b))
	tests := []struct {
		give string
		want *campaigns.Account
	}{
		{"hash-a1", a},
		{"hash-a2", a},
		{"hash-b1", b},
	}
	for _, tt := range tests {
		got, err := c.AccountByKeyHash(ctx, tt.give)
		must(t, err)
		wantAccount(t, got, tt.want)
	}
}

func testAccountList(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	got, err := c.Accounts(ctx)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("empty catalog lists %d accounts", len(got))
	}
	ids := []string{"pub_9", "adv_1", "agc_5", "adv_10", "adv_2", "Adv_3"}
	want := map[string]*campaigns.Account{}
	for i, id := range ids {
		a := account(id, campaigns.Advertiser, "hash-"+id)
		a.CreatedAt = a.CreatedAt.Add(time.Duration(i) * time.Hour)
		want[id] = a
		must(t, c.CreateAccount(ctx, a))
	}
	got, err = c.Accounts(ctx)
	must(t, err)
	wantIDs := []string{"Adv_3", "adv_1", "adv_10", "adv_2", "agc_5", "pub_9"}
	var gotIDs []string
	for _, a := range got {
		gotIDs = append(gotIDs, a.ID)
	}
	diff(t, "account IDs", gotIDs, wantIDs)
	for _, a := range got {
		wantAccount(t, a, want[a.ID])
	}
}

// wantKeys checks that exactly the hashes in has find account id, and the
// ones in gone find nothing.
func wantKeys(t *testing.T, c storage.Catalog, id string, has, gone []string) {
	t.Helper()
	ctx := t.Context()
	for _, h := range has {
		a, err := c.AccountByKeyHash(ctx, h)
		must(t, err)
		if a.ID != id {
			t.Fatalf("key %q finds account %q, want %q", h, a.ID, id)
		}
	}
	for _, h := range gone {
		_, err := c.AccountByKeyHash(ctx, h)
		wantCode(t, err, campaigns.NotFound)
	}
	a, err := c.Account(ctx, id)
	must(t, err)
	diff(t, "key hashes of "+id, sortedOrNil(a.KeyHashes), sortedOrNil(has))
}

func testAccountKeyRotation(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	const id = "adv_1"
	must(t, c.CreateAccount(ctx, account(id, campaigns.Advertiser, "old")))

	steps := []struct {
		name      string
		give      []string
		has, gone []string
	}{
		{"add new key beside old", []string{"old", "new"}, []string{"old", "new"}, nil},
		{"drop old key", []string{"new"}, []string{"new"}, []string{"old"}},
		{"set the same again", []string{"new"}, []string{"new"}, []string{"old"}},
		{"replace entirely", []string{"newer", "newest"}, []string{"newer", "newest"}, []string{"old", "new"}},
		{"revoke all", nil, nil, []string{"old", "new", "newer", "newest"}},
		{"reuse a freed hash", []string{"old"}, []string{"old"}, []string{"new", "newer", "newest"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			must(t, setKeys(ctx, c, id, st.give))
			wantKeys(t, c, id, st.has, st.gone)
		})
	}
	// The rest of the account is untouched by key changes.
	got, err := c.Account(ctx, id)
	must(t, err)
	wantAccount(t, got, account(id, campaigns.Advertiser, "old"))

	// A hash freed by rotation can be taken by another account.
	must(t, setKeys(ctx, c, id, []string{"newest"}))
	must(t, c.CreateAccount(ctx, account("adv_2", campaigns.Advertiser, "old")))
	wantKeys(t, c, "adv_2", []string{"old"}, nil)
}

func testAccountSetKeysConflict(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.CreateAccount(ctx, account("adv_a", campaigns.Advertiser, "a1")))
	must(t, c.CreateAccount(ctx, account("adv_b", campaigns.Advertiser, "b1", "b2")))

	tests := []struct {
		name string
		give []string
	}{
		{"only another's hash", []string{"b1"}},
		{"new hash and another's", []string{"a2", "b2"}},
		{"own hash and another's", []string{"a1", "b1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, setKeys(ctx, c, "adv_a", tt.give), campaigns.Conflict)
			// Nothing changed, on either account.
			wantKeys(t, c, "adv_a", []string{"a1"}, []string{"a2"})
			wantKeys(t, c, "adv_b", []string{"b1", "b2"}, nil)
		})
	}
}

func testAccountSetKeysNotFound(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.CreateAccount(ctx, account("adv_a", campaigns.Advertiser, "a1")))
	wantCode(t, setKeys(ctx, c, "adv_nope", []string{"x1"}), campaigns.NotFound)
	wantCode(t, setKeys(ctx, c, "", []string{"x1"}), campaigns.NotFound)
	_, err := c.AccountByKeyHash(ctx, "x1")
	wantCode(t, err, campaigns.NotFound)
	_, err = c.Account(ctx, "adv_nope")
	wantCode(t, err, campaigns.NotFound)
}

func testAccountCopies(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	give := account("adv_1", campaigns.Advertiser, "k1", "k2")
	want := account("adv_1", campaigns.Advertiser, "k1", "k2")
	must(t, c.CreateAccount(ctx, give))
	give.Name = "changed after create"
	give.KeyHashes[0] = "changed"

	got, err := c.Account(ctx, "adv_1")
	must(t, err)
	got.Name = "changed after get"
	got.KeyHashes[0] = "changed"

	got, err = c.Account(ctx, "adv_1")
	must(t, err)
	wantAccount(t, got, want)
}

// setKeys replaces an account's keys with keyHashes.
func setKeys(ctx context.Context, c storage.Catalog, id string, keyHashes []string) error {
	return c.UpdateAccountKeys(ctx, id, func([]string) ([]string, error) { return keyHashes, nil })
}

// testAccountUpdateKeysAtomic: updates at once that each add a key to the
// ones they are given keep every key. A read, then a separate write (the
// catalog's rotation once did so, and a lock in one process could not
// cover the replicas sharing Redis) let a write drop the key another had
// just added.
func testAccountUpdateKeysAtomic(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.CreateAccount(ctx, account("adv_1", campaigns.Advertiser, "k0")))
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = c.UpdateAccountKeys(ctx, "adv_1", func(cur []string) ([]string, error) {
				// A pause between the read and the write, where another
				// update can come.
				time.Sleep(time.Millisecond)
				return append(cur, fmt.Sprintf("k%d", i+1)), nil
			})
		})
	}
	wg.Wait()
	want := []string{"k0"}
	for i := range n {
		must(t, errs[i])
		want = append(want, fmt.Sprintf("k%d", i+1))
	}
	wantKeys(t, c, "adv_1", want, nil)
}

// testAccountUpdateKeysChangeError: an error from the change is returned as
// it is, and the keys stay as they were.
func testAccountUpdateKeysChangeError(t *testing.T, c storage.Catalog) {
	ctx := t.Context()
	must(t, c.CreateAccount(ctx, account("adv_1", campaigns.Advertiser, "k0", "k1")))
	refuse := campaigns.Errorf(campaigns.Conflict, "too many keys")
	err := c.UpdateAccountKeys(ctx, "adv_1", func(cur []string) ([]string, error) {
		cur[0] = "scribbled" // the change's own copy
		return nil, refuse
	})
	if err != refuse {
		t.Fatalf("UpdateAccountKeys returned %v, want the change's error as is", err)
	}
	wantKeys(t, c, "adv_1", []string{"k0", "k1"}, []string{"scribbled"})
}
