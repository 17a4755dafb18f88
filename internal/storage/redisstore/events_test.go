package redisstore_test

import (
	"testing"

	"github.com/navad/navad/internal/redistest"
	"github.com/navad/navad/internal/storage"
	"github.com/navad/navad/internal/storage/redisstore"
	"github.com/navad/navad/internal/storage/storagetest"
)

var _ storagetest.EventsBackend = (*redisstore.Store)(nil)

// TestEventsContract runs the events contract suite on one redis-server,
// emptied before each subtest, and again on a one-node Redis Cluster, which
// refuses any script whose keys span slots.
func TestEventsContract(t *testing.T) {
	for _, tt := range []struct {
		name  string
		start func(testing.TB) *redistest.Server
	}{
		{"single node", redistest.Start},
		{"cluster", redistest.StartCluster},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.start(t)
			storagetest.RunEvents(t, func(t *testing.T) storagetest.EventsBackend {
				srv.Flush(t)
				return open(t, srv.URL())
			})
		})
	}
}

// TestCapsContract runs the caps contract suite on both Redis modes. Each
// open is a new connection to the same Redis, as a restarted replica makes.
func TestCapsContract(t *testing.T) {
	for _, tt := range []struct {
		name  string
		start func(testing.TB) *redistest.Server
	}{
		{"single node", redistest.Start},
		{"cluster", redistest.StartCluster},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.start(t)
			storagetest.RunCaps(t, func(t *testing.T) func() storage.Caps {
				srv.Flush(t)
				return func() storage.Caps { return open(t, srv.URL()).Caps() }
			})
		})
	}
}
