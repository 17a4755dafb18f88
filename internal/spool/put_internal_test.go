package spool

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

// TestPutFailureIsUnavailable: an event the spool's file will not take
// (here its database closed under it) is refused as Unavailable, a 503 that
// tells the client to try again, as when the spool is full; it was an
// internal error, a 500.
func TestPutFailureIsUnavailable(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool.db"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	e := &storage.Event{Kind: storage.Impression, AdID: "req1.1", Issued: time.Unix(1795000000, 0).UTC(), At: time.Unix(1795000100, 0).UTC(),
		Key: storage.AggKey{Day: 20770, Hour: 19, AdvertiserID: "adv_1", CampaignID: "cmp_1", PublisherID: "pub_1", StoreID: "s1", Cell: 0x882f5aa6b7fffff}}
	err = s.Put(e)
	if code := campaigns.ErrorCode(err); code != campaigns.Unavailable {
		t.Fatalf("Put on a failing file: %v (code %s), want %s", err, code, campaigns.Unavailable)
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("a refused event counts in the spool: Len %d", n)
	}
}
