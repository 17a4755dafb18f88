package record_test

import (
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/record"
	"github.com/navad/navad/internal/storage/storagetest"
)

func TestStoreSize(t *testing.T) {
	stores := storagetest.MakeStores(200)
	stores = append(stores, campaigns.Store{}, campaigns.Store{Name: string(make([]byte, 200)), Address: string(make([]byte, 20000))})
	for i := range stores {
		if got, want := record.StoreSize(&stores[i]), len(record.AppendStore(nil, &stores[i])); got != want {
			t.Fatalf("StoreSize of store %d = %d, encoding is %d bytes", i, got, want)
		}
	}
}
