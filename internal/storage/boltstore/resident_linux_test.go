package boltstore_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/storagetest"
)

// rssFile returns the process's resident pages of mapped files, in bytes.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestReleaseResident reads a catalogue of 50 MB or so, as the index load
// does, then releases the file's pages: the process's resident file pages
// fall by most of the file, and the stores read the same afterwards.
func TestReleaseResident(t *testing.T) {
	const n = 100000
	s := open(t, t.TempDir())
	ctx := t.Context()
	must(t, s.PutStores(ctx, "adv", storagetest.MakeStores(n)))
	count := func() int {
		var got int
		must(t, s.Stores(ctx, "", func(*campaigns.Store) bool { got++; return true }))
		return got
	}
	if got := count(); got != n {
		t.Fatalf("read %d stores, want %d", got, n)
	}
	before := rssFile(t)
	must(t, s.ReleaseResident())
	after := rssFile(t)
	if before-after < 8<<20 {
		t.Fatalf("resident file pages %d MB before, %d MB after: want at least 8 MB released", before>>20, after>>20)
	}
	if got := count(); got != n {
		t.Fatalf("after release read %d stores, want %d", got, n)
	}
	t.Logf("resident file pages %d MB before, %d MB after", before>>20, after>>20)
}
