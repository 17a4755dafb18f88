package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/internal/storage"
)

func testEntries(n int) []servedEntry {
	var out []servedEntry
	for i := range n {
		k := storage.AggKey{Hour: uint8(i % 24), AdvertiserID: fmt.Sprintf("adv_%d", i%3), CampaignID: fmt.Sprintf("cmp_%d", i%7),
			PublisherID: "pub", StoreID: fmt.Sprintf("s%d", i), Cell: uint64(i) << 8}
		out = append(out, servedEntry{rollupKey(rollupC, &k)[4:], uint64(i * i)})
	}
	slices.SortFunc(out, func(a, b servedEntry) int { return bytes.Compare(a.key, b.key) })
	return out
}

// TestServedBlockRoundTrip: what appendServedBlock writes, blockReader
// reads back, also when resumed from a copy of its state.
func TestServedBlockRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give []servedEntry
	}{
		{"none", nil},
		{"one", testEntries(1)},
		{"many", testEntries(500)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := appendServedBlock(nil, 1793582400, tt.give)
			var r blockReader
			if err := r.open(v); err != nil {
				t.Fatal(err)
			}
			if r.written != 1793582400 {
				t.Fatalf("written %d", r.written)
			}
			for i := 0; ; i++ {
				if i == len(tt.give)/2 { // resume on another copy of the bytes
					r.rd.B = bytes.Clone(v)
				}
				k, n, ok, err := r.next()
				if err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
				if !ok {
					if i != len(tt.give) {
						t.Fatalf("%d entries, want %d", i, len(tt.give))
					}
					break
				}
				if w := tt.give[i]; !bytes.Equal(k, w.key) || n != w.n || !validRollupKey(rollupC, k) {
					t.Fatalf("entry %d: %q %d, want %q %d", i, k, n, w.key, w.n)
				}
			}
		})
	}
}

// FuzzServedBlock: no block, however damaged, panics the reader or makes
// it loop.
func FuzzServedBlock(f *testing.F) {
	f.Add(appendServedBlock(nil, 7, testEntries(20)))
	f.Add([]byte{1, 0, 0})
	f.Add(append(appendServedBlock(nil, 7, testEntries(3)), 0))
	f.Add(binary.AppendUvarint([]byte{1, 0, 1, 0}, 1<<62))
	f.Fuzz(func(t *testing.T, v []byte) {
		var r blockReader
		if r.open(v) != nil {
			return
		}
		for i := 0; ; i++ {
			if i > len(v) {
				t.Fatalf("more than %d entries in %d bytes", i, len(v))
			}
			k, _, ok, err := r.next()
			if err != nil || !ok {
				return
			}
			if len(k) > maxCellKeyLen {
				t.Fatalf("key of %d bytes", len(k))
			}
		}
	})
}

// TestMergeRuns: merging sorted runs gives what a stable sort gives, for
// any number of runs, empty ones included.
func TestMergeRuns(t *testing.T) {
	type el struct{ k, order int }
	r := rand.New(rand.NewPCG(7, 8))
	for range 500 {
		var s []el
		var runs []int
		for range r.IntN(12) {
			runs = append(runs, len(s))
			run := make([]el, r.IntN(20))
			for i := range run {
				run[i].k = r.IntN(30)
			}
			slices.SortFunc(run, func(a, b el) int { return a.k - b.k })
			s = append(s, run...)
		}
		if len(runs) == 0 {
			runs = []int{0}
		}
		for i := range s {
			s[i].order = i
		}
		want := slices.Clone(s)
		cmp := func(a, b el) int { return a.k - b.k }
		slices.SortStableFunc(want, cmp)
		if got, _ := mergeRuns(s, nil, runs, cmp); !slices.Equal(got, want) {
			t.Fatalf("runs %v of %v: got %v, want %v", runs, s, got, want)
		}
	}
}

// TestTakeLogSumsRecords: takeLog returns the entries of several log
// records summed by key in key order, by merging records that are in
// order, and still when a record is not (sorted then, not trusted). The
// second case reuses the buffers the first filled, as compactions do.
func TestTakeLogSumsRecords(t *testing.T) {
	sc := &logScratch{}
	for _, reversed := range []bool{false, true} {
		t.Run(fmt.Sprintf("reversed %v", reversed), func(t *testing.T) {
			db, err := bolt.Open(filepath.Join(t.TempDir(), "log.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			group := appendServedGroupKey(nil, 20000, 10)
			all := testEntries(300)
			want := map[string]uint64{}
			err = db.Update(func(tx *bolt.Tx) error {
				log, err := tx.CreateBucket(bucketServedLog)
				if err != nil {
					return err
				}
				// Four records of overlapping keys: every third entry,
				// from a different start each.
				var arena []byte
				for rec := range 4 {
					var es []servedEntry
					for i := rec; i < len(all); i += 3 {
						es = append(es, all[i])
						want[string(all[i].key)] += all[i].n
					}
					if reversed && rec == 2 {
						slices.Reverse(es)
					}
					record := binary.BigEndian.AppendUint64(bytes.Clone(group), uint64(rec+1))
					if err := putServedBlocks(log, record, 1793582400, es, &arena); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			err = db.View(func(tx *bolt.Tx) error {
				got, doomed, left, err := takeLog(context.Background(), tx.Bucket(bucketServedLog), rollupC, group, 1<<30, sc)
				if err != nil {
					return err
				}
				if len(doomed) < 4 || left != 0 || len(got) != len(want) {
					t.Fatalf("%d entries from %d blocks (%d bytes left), want %d entries", len(got), len(doomed), left, len(want))
				}
				for i, e := range got {
					if i > 0 && bytes.Compare(got[i-1].key, e.key) >= 0 {
						t.Fatalf("entry %d %q not after %q", i, e.key, got[i-1].key)
					}
					if want[string(e.key)] != e.n {
						t.Fatalf("%q: %d, want %d", e.key, e.n, want[string(e.key)])
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGroupServedAll: the four rollups' groups made with one sort are
// groupServed's, rollup by rollup, for rows over several days and hours
// whose IDs are prefixes of one another (adv_1, adv_10) and repeat.
func TestGroupServedAll(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	ids := func(prefix string) string {
		return prefix + []string{"1", "10", "100", "2", "a", "ア"}[r.IntN(6)]
	}
	var sc flushScratch // shared, as flushes share them: what one grouping leaves must not show in the next
	for range 200 {
		rows := make([]storage.ServedCount, r.IntN(300))
		for i := range rows {
			rows[i] = storage.ServedCount{Key: storage.AggKey{
				Day: storage.Day(20000 + r.IntN(2)), Hour: uint8(r.IntN(3)),
				AdvertiserID: ids("adv_"), CampaignID: ids("c"), PublisherID: ids("p"),
				StoreID: ids("s"), Cell: uint64(r.IntN(3)) << 52,
			}, N: 1 + uint64(r.IntN(3))}
		}
		got := groupServedAll(rows, &sc)
		for _, ru := range rollups {
			want := groupServed(ru.kind, rows)
			if len(got[ru.kind]) != len(want) {
				t.Fatalf("%s: %d groups, want %d", ru.bucket, len(got[ru.kind]), len(want))
			}
			for i, w := range want {
				g := got[ru.kind][i]
				if !bytes.Equal(g.group, w.group) || len(g.entries) != len(w.entries) {
					t.Fatalf("%s group %d: %x with %d entries, want %x with %d", ru.bucket, i, g.group, len(g.entries), w.group, len(w.entries))
				}
				for j, we := range w.entries {
					if ge := g.entries[j]; !bytes.Equal(ge.key, we.key) || ge.n != we.n {
						t.Fatalf("%s group %d entry %d: %q %d, want %q %d", ru.bucket, i, j, ge.key, ge.n, we.key, we.n)
					}
				}
			}
		}
	}
}

// groupServed sums the rows by their key in rollup r (without the day)
// and splits them by day and hour. Every rollup's groups of the same rows
// are the same days and hours, in the same order. The keys are written one
// after another into one buffer and sorted there, and the groups' keys are
// pieces of it. It is how AddServed grouped a flush, rollup by rollup,
// before groupServedAll: the reference TestGroupServedAll holds that to.
func groupServed(r rollupKind, rows []storage.ServedCount) []servedGroup {
	type entry struct {
		start, end int
		n          uint64
	}
	es := make([]entry, len(rows))
	size := 0
	for i := range rows {
		size += servedGroupLen + rollupBodyLen(r, &rows[i].Key)
	}
	buf := make([]byte, 0, size)
	for i := range rows {
		k := &rows[i].Key
		start := len(buf)
		buf = appendRollupBody(appendServedGroupKey(buf, k.Day, k.Hour), r, k)
		es[i] = entry{start, len(buf), rows[i].N}
	}
	key := func(e entry) []byte { return buf[e.start:e.end:e.end] }
	slices.SortFunc(es, func(a, b entry) int { return bytes.Compare(key(a), key(b)) })
	var groups []servedGroup
	for i := 0; i < len(es); i++ {
		e := es[i]
		for i+1 < len(es) && bytes.Equal(key(es[i+1]), key(e)) {
			i++
			e.n += es[i].n
		}
		k := key(e)
		g, suffix := k[:servedGroupLen:servedGroupLen], k[servedGroupLen:]
		if len(groups) == 0 || !bytes.Equal(groups[len(groups)-1].group, g) {
			groups = append(groups, servedGroup{group: g})
		}
		last := &groups[len(groups)-1]
		last.entries = append(last.entries, servedEntry{suffix, e.n})
	}
	return groups
}

// TestServedArenaReusedAfterCommit: putServedBlocks' and foldServed's
// arena is reused by the next transaction, as AddServed's pool and the
// compactions reuse theirs; what the first transaction wrote through it
// must read back unchanged after the second has overwritten it.
func TestServedArenaReusedAfterCommit(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "arena.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	group := appendServedGroupKey(nil, 20000, 10)
	first, second := testEntries(300), testEntries(300)
	for i := range second {
		second[i].n += 1000
	}
	var arena []byte
	for i, es := range [][]servedEntry{first, second} {
		err := db.Update(func(tx *bolt.Tx) error {
			arena = arena[:0]
			log, err := tx.CreateBucketIfNotExists(bucketServedLog)
			if err != nil {
				return err
			}
			record := binary.BigEndian.AppendUint64(bytes.Clone(group), uint64(i+1))
			if err := putServedBlocks(log, record, 1793582400, es, &arena); err != nil {
				return err
			}
			agg, err := tx.CreateBucketIfNotExists(bucketAggH)
			if err != nil {
				return err
			}
			return foldServed(context.Background(), agg, group[:4], es, &arena)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = db.View(func(tx *bolt.Tx) error {
		var r blockReader
		got := map[string]uint64{}
		c := tx.Bucket(bucketServedLog).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := r.open(v); err != nil {
				return err
			}
			for {
				key, n, ok, err := r.next()
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				got[string(key)] += n
			}
		}
		agg := tx.Bucket(bucketAggH)
		for j := range first {
			want := first[j].n + second[j].n
			if got[string(first[j].key)] != want {
				t.Errorf("log: %q = %d, want %d", first[j].key, got[string(first[j].key)], want)
			}
			var c storage.Counts
			if err := decodeCounts(agg.Get(append(bytes.Clone(group[:4]), first[j].key...)), &c); err != nil {
				return err
			}
			if c.Served != want {
				t.Errorf("folded: %q = %d, want %d", first[j].key, c.Served, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
