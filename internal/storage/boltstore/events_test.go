package boltstore_test

import (
	"testing"
	"time"

	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/boltstore"
	"github.com/navad/navad/internal/storage/storagetest"
)

func TestEventsContract(t *testing.T) {
	storagetest.RunEvents(t, func(t *testing.T) storagetest.EventsBackend {
		return open(t, t.TempDir())
	})
}

var _ storagetest.EventsBackend = (*boltstore.Store)(nil)

// TestEventsReopen: counts, the record of counted tokens and the tracking
// secret survive a restart.
func TestEventsReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	day := storage.DayOf(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	e := &storage.Event{Kind: storage.Visit, AdID: "r1.1", Issued: time.Unix(1793577600, 0), At: time.Unix(1793577700, 0),
		Key: storage.AggKey{Day: day, Hour: 9, AdvertiserID: "adv", CampaignID: "cmp", PublisherID: "pub", StoreID: "s1", Cell: 7}}
	e.Token[0] = 1
	if ok, err := s.Record(ctx, e); err != nil || !ok {
		t.Fatalf("record: %v %v", ok, err)
	}
	must(t, s.AddServed(ctx, "b1", []storage.ServedCount{{Key: e.Key, N: 4}}))
	secret, err := s.TrackingSecret(ctx, []byte("0123456789abcdef0123456789abcdef"))
	must(t, err)
	must(t, s.Close())

	s = open(t, dir)
	if ok, err := s.Record(ctx, e); err != nil || ok {
		t.Fatalf("record after reopen: counted %v, err %v; want a repeat", ok, err)
	}
	must(t, s.AddServed(ctx, "b1", []storage.ServedCount{{Key: e.Key, N: 4}}))
	var got storage.Counts
	must(t, s.Aggregates(ctx, &storage.AggregateQuery{From: day, To: day, Dims: storage.AllDims}, func(a *storage.Aggregate) bool {
		got.Add(a.Counts)
		return true
	}))
	if got != (storage.Counts{Served: 4, Visits: 1}) {
		t.Fatalf("counts after reopen %+v", got)
	}
	again, err := s.TrackingSecret(ctx, []byte("another-secret-0123456789abcdefgh"))
	must(t, err)
	if string(again) != string(secret) {
		t.Fatal("tracking secret changed across a restart")
	}
}
