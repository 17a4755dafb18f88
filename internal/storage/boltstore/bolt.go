// Package boltstore is navad's embedded storage backend: a storage.Catalog
// kept in one bbolt database file, for a single machine that serves the whole
// country without any other process to run.
//
// # Layout
//
// Each kind of record has its own bucket. Composite keys join their parts
// with a NUL byte, which identifiers never contain (campaigns.ValidateID) and
// which sorts before every other byte, so byte order of a key is the order of
// its parts as a tuple and a per-advertiser scan is a prefix scan:
//
//	accounts    account ID                    → JSON account, key hashes included
//	keys        key hash                      → account ID (keeps hashes unique)
//	campaigns   campaign ID                   → JSON campaign
//	by_adv      advertiser ID NUL campaign ID → empty (campaigns of one advertiser)
//	stores      advertiser ID NUL store ID    → binary store (see codec.go)
//	stockout    advertiser ID NUL store ID NUL product ID → empty
//	stockat     advertiser ID NUL store ID NUL product ID → the as_of (Unix ms, big-endian uint64) of the last applied stock row that had one
//	meta        "schema"                      → layout version
//
// Version 2 added the served log and runs of events.go, version 3 the
// served logs of the coarse rollups; Open upgrades an older file by
// creating their buckets (an older build would not see the counts in
// them, so it refuses the upgraded file).
//
// Tracking events and their aggregates have buckets of their own, described
// in events.go.
//
// Only out-of-stock reports are kept: a product reported back in stock loses
// its row, so OutOfStock is a scan of what is actually out.
//
// # Durability and concurrency
//
// A method that returns nil has committed its transaction, and bbolt fsyncs
// on commit, so the write survives a crash (Open fsyncs the directories
// of a file it creates, so the file itself does). Writes that the Catalog contract
// calls all or nothing are one transaction. A Store is safe for concurrent
// use; bbolt runs one writer at a time and readers alongside it.
//
// Long iterations (Stores, OutOfStock) read in chunks, each in its own short
// read transaction, and call fn between them. That keeps a slow fn from
// holding a read transaction open, which in bbolt would block writers that
// need to grow the file, and lets fn call back into the Store. The price is
// that an iteration is not a snapshot: a store written while it runs may or
// may not be visited; every key is visited at most once, in key order.
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage"
)

var _ storage.Catalog = (*Store)(nil)

// FileName is the name of the database file that Open keeps in its directory.
const FileName = "navad.db"

// ErrClosed is returned (wrapped) by every method of a Store called after
// Close. Ping returns an Unavailable *campaigns.Error that wraps it.
var ErrClosed = errors.New("boltstore: closed")

// schemaVersion is the layout described in the package comment. Open refuses
// a file written by a newer layout rather than misread it.
const schemaVersion = 3

var (
	bucketAccounts  = []byte("accounts")
	bucketKeys      = []byte("keys")
	bucketCampaigns = []byte("campaigns")
	bucketByAdv     = []byte("by_adv")
	// bucketCampaignsGone holds the IDs of deleted campaigns, which
	// CreateCampaign does not give again.
	bucketCampaignsGone = []byte("campaigns_gone")
	bucketStores        = []byte("stores")
	bucketStockOut      = []byte("stockout")
	bucketStockAt       = []byte("stockat") // adv|store|product → the AsOf (Unix ms, big-endian) of its last row that had one
	bucketMeta          = []byte("meta")

	allBuckets = append([][]byte{bucketAccounts, bucketKeys, bucketCampaigns, bucketByAdv, bucketCampaignsGone, bucketStores, bucketStockOut, bucketStockAt, bucketMeta}, eventBuckets...)

	keySchema = []byte("schema")
)

// initialMmapSize is 1 GiB, some four times the file of a million stores,
// on 64-bit platforms; 32-bit ones have no address space to spare.
const initialMmapSize = (1 << 30) * (strconv.IntSize / 64)

// sep joins the parts of a composite key.
const sep = 0

// Store is a storage.Catalog in a bbolt file. Create one with Open; it is
// safe for concurrent use.
type Store struct {
	db     *bolt.DB
	events groupCommit // tracking events' writes (events.go)

	now          func() time.Time
	onError      func(error)
	compactBytes int           // see defaultCompactBytes
	compactEvery time.Duration // 0: no background compaction
	// compactMu is held by a compaction of served counts, and for reading
	// by reports that read them (served.go). Compactions only TryLock it,
	// so a report's fn may start another report.
	compactMu sync.RWMutex
	// logScratch is the buffers of compactions, used under compactMu.
	logScratch logScratch
	stop       chan struct{} // closed by Close to stop the compaction loop
	done       chan struct{} // closed by the loop when it returns
	stopOnce   sync.Once

	mu     sync.RWMutex // guards closed against a concurrent Close
	closed bool

	// capsMu guards caps, the Caps open on this Store: DeleteCampaign
	// tells them to forget the campaign's counters (caps.go).
	capsMu sync.Mutex
	caps   map[*Caps]struct{}
}

// Option changes how Open opens the database.
type Option func(*options)

type options struct {
	lockTimeout  time.Duration
	onError      func(error)
	now          func() time.Time
	compactBytes int
	compactEvery time.Duration
}

// WithLockTimeout sets how long Open waits for another process to release
// the database file (bbolt takes an exclusive file lock). The default is 5s;
// zero waits forever.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

// WithOnError sets what is told of an error of the Store's background
// work: merging tracking's served counts (see events.go), which is retried
// later. nil (the default) ignores them.
func WithOnError(fn func(error)) Option {
	return func(o *options) { o.onError = fn }
}

// Open opens the database in dir, creating the directory and the file when
// they do not exist yet.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{lockTimeout: 5 * time.Second, now: time.Now, compactBytes: defaultCompactBytes, compactEvery: defaultCompactEvery}
	for _, opt := range opts {
		opt(&o)
	}
	if o.compactBytes <= 0 {
		o.compactBytes = defaultCompactBytes
	}
	if dir == "" {
		return nil, errors.New("open bolt store: empty directory")
	}
	// The directories that Open creates, and the file, are new entries
	// in their parents; fsyncing the file (as bbolt's commits do) does
	// not make an entry durable, so a power cut could take the whole file
	// with the writes acknowledged in it. The parents are synced once
	// the file holds its schema.
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		created = append(created, filepath.Dir(d))
	}
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		created = append([]string{dir}, created...)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open bolt store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: o.lockTimeout,
		// The map freelist is bbolt's recommendation for large files; a
		// national store table is a few hundred megabytes.
		FreelistType: bolt.FreelistMapType,
		// Reserve address space (not memory) for a national catalogue up
		// front. Each time bbolt outgrows its mapping it remaps, and a
		// write transaction then copies every node it holds out of the old
		// mapping: without this a million-store upload spends half its
		// time remapping.
		InitialMmapSize: initialMmapSize,
		// NoSync stays false: a nil return from a write means it is on disk.
	})
	if err != nil {
		return nil, fmt.Errorf("open bolt store: %w", err)
	}
	if err := db.Update(initSchema); err != nil {
		_ = db.Close() // the schema error is the one to report
		return nil, fmt.Errorf("open bolt store: %w", err)
	}
	for _, d := range created {
		if err := syncDir(d); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open bolt store: %w", err)
		}
	}
	s := &Store{db: db, now: o.now, onError: o.onError, compactBytes: o.compactBytes, compactEvery: o.compactEvery,
		stop: make(chan struct{}), done: make(chan struct{})}
	if s.compactEvery > 0 {
		go s.compactLoop()
	} else {
		close(s.done)
	}
	return s, nil
}

// syncDir fsyncs the directory dir, so that the entries created in it
// survive a power cut. A variable for tests.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func initSchema(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keySchema); v != nil {
		if len(v) != 1 || v[0] > schemaVersion {
			return fmt.Errorf("file has schema version %v, this build knows %d", v, schemaVersion)
		}
		if v[0] == schemaVersion {
			return nil
		}
	}
	return meta.Put(keySchema, []byte{schemaVersion})
}

// Path returns the path of the database file.
func (s *Store) Path() string { return s.db.Path() }

// Close stops the Store's background work and closes the database file.
// It waits for transactions in progress. Closing a closed Store does
// nothing and returns nil.
func (s *Store) Close() error {
	// Before taking mu: the loop's transactions need it for reading.
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close bolt store: %w", err)
	}
	return nil
}

// Ping reports whether the database can serve reads and writes now, by
// committing an empty write transaction. Unavailable; the error also wraps
// the cause (ErrClosed, ctx.Err(), or bbolt's) for errors.Is.
func (s *Store) Ping(ctx context.Context) error {
	unavailable := func(err error) error {
		return fmt.Errorf("ping: %w: %w", campaigns.Errorf(campaigns.Unavailable, "bolt store unavailable"), err)
	}
	if err := s.begin(ctx); err != nil {
		return unavailable(err)
	}
	defer s.end()
	if err := s.db.Update(func(*bolt.Tx) error { return nil }); err != nil {
		return unavailable(err)
	}
	return nil
}

// begin checks that the Store is open and ctx is live, and holds off Close
// until end. Every method calls it first.
func (s *Store) begin(ctx context.Context) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		s.mu.RUnlock()
		return err
	}
	return nil
}

func (s *Store) end() { s.mu.RUnlock() }

// view runs fn in a read transaction, for the methods whose whole work is one
// transaction.
func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	return s.db.View(fn)
}

// update runs fn in a write transaction and commits it durably.
func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	return s.db.Update(fn)
}

// checkKey reports whether id can be a key or a key part: bbolt wants a
// non-empty key, and a NUL inside would blur composite keys. The HTTP layer
// validates identifiers before they get here; this guards the file.
func checkKey(what, id string) error {
	if id == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(id) > campaigns.MaxIDLen*4 {
		return fmt.Errorf("%s of %d bytes is too long", what, len(id))
	}
	if strings.IndexByte(id, sep) >= 0 { // a vector scan: this runs for every served count
		return fmt.Errorf("%s %q contains a NUL byte", what, id)
	}
	return nil
}

// validKey reports whether id could have been written by checkKey's rules;
// lookups of anything else are simply not found.
func validKey(id string) bool { return checkKey("", id) == nil }

// joinKey returns the parts joined with sep.
func joinKey(parts ...string) []byte {
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			k = append(k, sep)
		}
		k = append(k, p...)
	}
	return k
}

// prefixKey returns the key prefix of everything under advertiserID, or nil
// (everything) when it is "".
func prefixKey(advertiserID string) []byte {
	if advertiserID == "" {
		return nil
	}
	return append([]byte(advertiserID), sep)
}
