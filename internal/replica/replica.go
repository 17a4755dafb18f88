// Package replica keeps one navad replica's in-memory serving index in step
// with the shared Redis store, so that a write made through any replica
// reaches every replica's decisions.
//
// A Follower loads the index from Redis, then follows the change feed that
// redisstore appends to with every write (see redisstore/feed.go). It polls
// every stream of the feed in one pipelined round trip, a few times a
// second, and applies each record by re-reading what it names: a campaign,
// some stores of an advertiser, some stock rows (a stock record carries its
// rows, but they may be older than a write this replica made after the poll
// read them; applied as written, they would undo that acknowledged write in
// the index until its own record came, so they are read back too). Records
// this replica wrote itself are applied too: re-reading makes the index
// equal to the store whether or not the catalog applied the write already,
// and it is the only way this replica learns of a write Redis executed but
// whose answer was lost (the connection died after EXEC: the caller got
// 503 and the local index was never told). Re-applying an unchanged
// campaign or store list is cheap.
//
// Each advertiser's records, its campaigns' included, go to a lane of their
// own, a goroutine that applies them in the order read while the polls go
// on, so that a large upload of one advertiser (seconds to read back and
// index) holds up only that advertiser's later records, not other
// advertisers' stock. A lane applies its records inside
// catalog.Service.ApplyAdvertiser (campaign records: ApplyCampaigns), so
// that they never overtake, or are overtaken by, this replica's own writes
// of the same objects, while its other writes go on. A stream's cursor
// moves only over records that are applied, all those before included:
// after an error the Follower reads again from there, and applies again
// what other lanes had applied past it (harmless: records are re-read).
// Reloads alone (below) hold up every write, inside catalog.Service.Apply,
// once the lanes are idle.
//
// A stream whose next record does not carry the next sequence number has
// lost records this replica needed (it was away longer than the feed's
// retention, or Redis lost the tail of its data); the Follower then reloads
// what that stream covers: every campaign, or every advertiser of a store
// shard. So it does for a stream whose sequence number, or the last entry
// ID Redis generated for it, is below what this replica read: Redis lost
// records (after a failover to a Redis replica whose clock is behind,
// writes since may have taken the sequence number back up while their
// records got IDs below this replica's cursor). A new epoch means Redis
// lost everything; it reloads all. It checks sequence numbers, IDs and the
// epoch every few seconds and whenever Redis comes back after an error, so
// that losses are found even when nothing is written.
//
// A write made through this replica is in its index before its record is
// read (the catalog applies it as soon as Redis acknowledges it), so Redis
// can lose it where the read cursor says nothing: the cursor never passed
// its record. The Follower therefore remembers where each of its own writes
// put its record (redisstore.Store.OnWrite) until it reads that record. A
// stream whose sequence number or last generated ID went back below such a
// write, a record read in its place that another write made (another entry
// ID or origin: Redis gave the lost write's number to the next), or a
// number Redis gave to two writes of this replica, means Redis lost the
// write: the Follower reloads the stream, as for a gap. Without it the
// replica would serve the lost write, alone, until something else reloaded
// the stream.
//
// Polling, not XREAD BLOCK: the feed has one stream per store shard (a
// record must share its slot with the data it describes), and in Redis
// Cluster one XREAD cannot block on streams of different slots. Blocking on
// each would tie up a connection per stream per replica; one pipelined
// non-blocking XREAD per stream every 100 ms costs seventeen cheap commands
// and bounds the delay to a tenth of the one second allowed.
package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/storage/redisstore"
)

// Defaults of Config.
const (
	DefaultPoll  = 100 * time.Millisecond
	DefaultCheck = 5 * time.Second
	// maxBackoff bounds the wait between attempts while Redis is down.
	maxBackoff = time.Second
	// batch is how many records one poll reads per stream.
	batch = 512
	// maxQueued is how many records of a stream may be handed to lanes and
	// not yet applied before the stream is read again: it bounds the memory
	// held while a lane is far behind, at the price of holding up that
	// stream's other advertisers then.
	maxQueued = 4 * batch
	// maxOwn is how many writes made through this replica may wait, per
	// stream, for the follower to read their records (Follower.own): a few
	// tens of bytes each. Past it the follower forgets them and reloads the
	// stream instead, which tells what they would have.
	maxOwn = 16 * batch
)

// Config is what a Follower needs; every field but Poll and Check is
// required.
type Config struct {
	Store   *redisstore.Store
	Catalog *catalog.Service
	Index   *serving.Index
	Keys    *auth.Keys
	Logger  *slog.Logger
	Poll    time.Duration // how often the feed is read; DefaultPoll when 0
	Check   time.Duration // how often sequence numbers, entry IDs and the epoch are verified; DefaultCheck when 0
}

// Follower keeps an index in step with the store. Its goroutine runs from
// Start until Close, and starts the lanes' goroutines, which it waits for
// before it returns.
type Follower struct {
	cfg     Config
	streams []redisstore.Stream
	order   []int // indexes of streams in the order a poll hands them to lanes (poll)

	// Owned by the goroutine (and by Start before it runs).
	epoch   string
	cursors []redisstore.Cursor // per stream: the last record handed to a lane

	cancel context.CancelFunc
	wg     sync.WaitGroup
	lanes  sync.WaitGroup // the lanes' goroutines; added to only by the polling goroutine

	mu       sync.Mutex
	err      error     // the last poll's error; nil when it succeeded
	errSince time.Time // when the current run of errors began
	applied  int64     // records applied, for tests and logs
	reloads  int64     // streams reloaded
	byKey    map[string]*lane
	pending  [][]*record         // per stream: records handed to lanes, in order, until the cursor below passes them
	queued   []int               // per stream: records handed to lanes and not yet applied
	done     []redisstore.Cursor // per stream: this record and all before it are applied
	laneErr  error               // a lane's error, until poll or settle reports it
	// own holds, per stream, the writes made through this replica
	// (redisstore.Store.OnWrite) whose records the follower has not read
	// yet, by sequence number, and ownLost why the stream must be reloaded
	// for them (why is "" when it need not): see wrote. told counts the
	// writes told, so that a reload forgets only those told before it read.
	own     [][]ownWrite
	ownLost []ownLoss
	told    uint64
	unwatch func() // stops the store telling wrote (OnWrite)

	// afterRead, when set (by tests, before the goroutine runs), is called
	// after a poll has read the feed, before handing it to the lanes;
	// applying and afterApply are called by a lane before and after it
	// applies a record, inside the catalog's lock.
	afterRead  func()
	applying   func(redisstore.Change)
	afterApply func(redisstore.Stream)
}

// ownWrite is a write made through this replica: where its record went.
type ownWrite struct {
	redisstore.Cursor
	told uint64 // Follower.told when it was told
}

// ownLoss is why a stream must be reloaded for writes made through this
// replica, and when it was found (Follower.told).
type ownLoss struct {
	why  string
	told uint64
}

// record is a change handed to a lane.
type record struct {
	redisstore.Change
	stream  int  // index in Follower.streams
	applied bool // guarded by Follower.mu
}

// lane applies the records of one advertiser (the key; "" for account
// records and older builds' campaign records) in the order handed to it.
// It exists while it has records to apply: its goroutine removes it from
// Follower.byKey when its queue is empty.
type lane struct {
	key   string
	queue []*record // guarded by Follower.mu
}

// Start loads the index from the store, then follows the feed until Close.
// It takes the feed's heads before loading, so that a write landing during
// the load is applied after it.
func Start(ctx context.Context, cfg Config) (*Follower, error) {
	f, err := load(ctx, cfg)
	if err != nil {
		return nil, err
	}
	f.start()
	return f, nil
}

// start runs the goroutine: Start after load; tests set hooks in between.
func (f *Follower) start() {
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Add(1)
	go f.run(runCtx)
}

// load is Start without the goroutine: tests step the follower by hand.
func load(ctx context.Context, cfg Config) (*Follower, error) {
	if cfg.Store == nil || cfg.Catalog == nil || cfg.Index == nil || cfg.Keys == nil || cfg.Logger == nil {
		return nil, errors.New("start replica: store, catalog, index, keys and logger are required")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Check <= 0 {
		cfg.Check = DefaultCheck
	}
	f := &Follower{cfg: cfg, streams: cfg.Store.Streams(), byKey: make(map[string]*lane)}
	f.pending = make([][]*record, len(f.streams))
	f.queued = make([]int, len(f.streams))
	f.own = make([][]ownWrite, len(f.streams))
	f.ownLost = make([]ownLoss, len(f.streams))
	// Before the heads: a write acknowledged after them is one this
	// replica's index holds before the follower reads its record.
	f.unwatch = cfg.Store.OnWrite(f.wrote)
	for _, campaignsLast := range []bool{false, true} {
		for i, st := range f.streams {
			if (st == redisstore.CampaignsStream) == campaignsLast {
				f.order = append(f.order, i)
			}
		}
	}
	if err := f.begin(ctx); err != nil {
		f.unwatch()
		return nil, fmt.Errorf("start replica: %w", err)
	}
	return f, nil
}

// begin reads the epoch and the streams' heads, then loads the catalogue.
func (f *Follower) begin(ctx context.Context) error {
	var err error
	if f.epoch, err = f.cfg.Store.Epoch(ctx); err != nil {
		return err
	}
	if f.cursors, err = f.cfg.Store.Heads(ctx, f.streams); err != nil {
		return err
	}
	f.done = slices.Clone(f.cursors)
	return f.cfg.Catalog.Load(ctx)
}

// Close stops following and waits for the goroutine. It is safe to call
// more than once.
func (f *Follower) Close() error {
	f.unwatch()
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	return nil
}

// wrote is told (redisstore.Store.OnWrite, on the writer's goroutine) of a
// write made through this replica that Redis acknowledged: the place of its
// record in stream st, which the follower checks when it reads that record
// (hand) and against what Redis says of the stream (verify). The writes of
// a stream are kept by sequence number: concurrent writes of one stream
// (stock of two advertisers of a shard) may be told out of order. A number
// told twice means Redis gave it to two writes: it lost the first. More
// than maxOwn waiting (the follower has not read the stream for long, its
// lanes behind) are dropped, and the stream reloaded instead.
func (f *Follower) wrote(st redisstore.Stream, at redisstore.Cursor) {
	i := int(st)
	if i < 0 || i >= len(f.streams) || f.streams[i] != st {
		return // no stream of this follower's
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.told++
	w := ownWrite{Cursor: at, told: f.told}
	o := f.own[i]
	k, found := slices.BinarySearchFunc(o, at.Seq, func(w ownWrite, seq int64) int { return cmp.Compare(w.Seq, seq) })
	switch {
	case found:
		f.ownLost[i] = ownLoss{fmt.Sprintf("Redis gave record %d to two writes made through this replica: it lost the first", at.Seq), f.told}
		o[k] = w
	case len(o) >= maxOwn:
		f.ownLost[i] = ownLoss{fmt.Sprintf("more than %d writes made through this replica waited for their records to be read", maxOwn), f.told}
		f.own[i] = nil
	default:
		f.own[i] = slices.Insert(o, k, w)
	}
}

// ownRead checks record ch of stream i against the writes made through this
// replica, with f.mu held: it forgets those the cursor has passed, and the
// one ch is the record of. It returns why the stream must be reloaded when
// ch holds the sequence number of such a write but is not its record: Redis
// lost the write and gave its number to another.
func (f *Follower) ownRead(i int, ch redisstore.Change) (reload string) {
	f.forgetOwn(i, ch.Seq) // read before they were told (hand ran between Redis's answer and wrote)
	if o := f.own[i]; len(o) > 0 && o[0].Seq == ch.Seq {
		if o[0].ID != ch.ID || ch.Origin != f.cfg.Store.Origin() {
			return fmt.Sprintf("record %d is entry %s of origin %s, not entry %s written through this replica: Redis lost that write",
				ch.Seq, ch.ID, ch.Origin, o[0].ID)
		}
		f.forgetOwn(i, ch.Seq+1)
	}
	return ""
}

// forgetOwn forgets the writes made through this replica to stream i whose
// records come before seq, with f.mu held.
func (f *Follower) forgetOwn(i int, seq int64) {
	o := f.own[i]
	n := 0
	for n < len(o) && o[n].Seq < seq {
		n++
	}
	clear(o[:n]) // the IDs go with the cursors
	f.own[i] = o[n:]
}

// Healthy reports whether the replica is in touch with the store: Redis
// answers and the feed is being followed. Unavailable otherwise. A replica
// that is not healthy still serves decisions from memory.
func (f *Follower) Healthy(ctx context.Context) error {
	if err := f.cfg.Store.Ping(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	err, since := f.err, f.errSince
	f.mu.Unlock()
	if err != nil && time.Since(since) > 2*f.cfg.Check {
		return fmt.Errorf("%w: %w", campaigns.Errorf(campaigns.Unavailable, "change feed stalled since %s", since.UTC().Format(time.RFC3339)), err)
	}
	return nil
}

// Stats reports how many records the follower applied and how many times it
// reloaded a stream, since Start.
func (f *Follower) Stats() (applied, reloads int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, f.reloads
}

func (f *Follower) run(ctx context.Context) {
	defer f.wg.Done()
	defer f.lanes.Wait()
	log := f.cfg.Logger
	wait := f.cfg.Poll
	lastCheck := time.Now()
	failing := false
	for {
		check := failing || time.Since(lastCheck) >= f.cfg.Check
		more, err := f.poll(ctx, check)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			f.mu.Lock()
			if f.err == nil {
				f.errSince = time.Now()
			}
			f.err = err
			f.mu.Unlock()
			if !failing {
				log.Warn("replica: lost the change feed; serving from memory until Redis is back", "err", err)
			}
			failing = true
		default:
			if check {
				lastCheck = time.Now()
			}
			if failing {
				f.mu.Lock()
				down := time.Since(f.errSince)
				f.err = nil
				f.mu.Unlock()
				log.Info("replica: following the change feed again", "after", down.Round(time.Millisecond))
				failing = false
			}
		}
		wait = nextWait(wait, f.cfg.Poll, more, err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// nextWait is how long the follower waits for its next poll after one that
// waited wait: none when a stream had more records waiting, else the poll
// interval; after a failure, twice the last wait, from the poll interval
// up to maxBackoff. (Doubled from none, the wait after a poll that caught
// up stayed none: with Redis refusing connections the follower polled
// without pause, tens of thousands of times a second, on one core.)
func nextWait(wait, poll time.Duration, more bool, err error) time.Duration {
	switch {
	case err != nil:
		return min(max(2*wait, poll), maxBackoff)
	case more:
		return 0
	}
	return poll
}

// poll verifies the feed when check is set, then reads one batch of every
// stream and hands each record to the lane of its advertiser, without
// waiting for the lanes. more reports that a stream had more records
// waiting. A lane's error is returned by the next poll, which reads nothing
// then (settle).
func (f *Follower) poll(ctx context.Context, check bool) (more bool, err error) {
	f.mu.Lock()
	failed := f.laneErr != nil
	f.mu.Unlock()
	if failed {
		return false, f.settle()
	}
	if err := f.reloadOwnLost(ctx); err != nil {
		return false, err
	}
	if check {
		if err := f.verify(ctx); err != nil {
			return false, err
		}
	}
	batches, err := f.read(ctx)
	if err != nil {
		return false, err
	}
	if f.afterRead != nil {
		f.afterRead()
	}
	// Store shards first, the campaigns' stream last, and a campaign
	// record goes to the lane of its advertiser: when one poll brings a
	// new advertiser's stores and its campaigns, the campaigns go live
	// with their stores already indexed, never for a moment with nothing
	// to lead to. (The other way round, a campaign going with its stores,
	// the stores leave first: a campaign served meanwhile leads to one of
	// the stores still listed, never to one removed.) This holds within a
	// poll. When the stores are not in the same poll (their shard had more
	// than a batch waiting, or maxQueued records held back in lanes), the
	// campaign may go live first: on this replica it then has nothing or
	// fewer stores to lead to until they are read, so it serves fewer ads
	// for that while, never an ad to a store it does not have.
	for _, i := range f.order {
		changes := batches[i]
		if len(changes) == 0 {
			continue
		}
		more = more || len(changes) == batch
		if reason := f.hand(ctx, i, changes); reason != "" {
			if err := f.settleAndReload(ctx, i, reason); err != nil {
				return false, err
			}
		}
	}
	return more, nil
}

// reloadOwnLost reloads the streams for which wrote found that Redis lost a
// write made through this replica, or had too many waiting to check them,
// and forgets those writes whose records the follower has read already
// (told after hand passed them).
func (f *Follower) reloadOwnLost(ctx context.Context) error {
	for _, i := range f.order {
		f.mu.Lock()
		f.forgetOwn(i, f.cursors[i].Seq+1)
		reason := f.ownLost[i].why
		f.mu.Unlock()
		if reason == "" {
			continue
		}
		if err := f.settleAndReload(ctx, i, reason); err != nil {
			return err
		}
	}
	return nil
}

// read reads, in one round trip, the next batch of every stream but those
// with maxQueued records still waiting in lanes.
func (f *Follower) read(ctx context.Context) ([][]redisstore.Change, error) {
	var idx []int
	f.mu.Lock()
	for i := range f.streams {
		if f.queued[i] < maxQueued {
			idx = append(idx, i)
		}
	}
	f.mu.Unlock()
	streams := make([]redisstore.Stream, len(idx))
	after := make([]redisstore.Cursor, len(idx))
	for k, i := range idx {
		streams[k], after[k] = f.streams[i], f.cursors[i]
	}
	got, err := f.cfg.Store.ReadFeed(ctx, streams, after, batch)
	if err != nil {
		return nil, err
	}
	batches := make([][]redisstore.Change, len(f.streams))
	for k, i := range idx {
		batches[i] = got[k]
	}
	return batches, nil
}

// hand gives the records of stream i, in order, to their lanes, moving the
// stream's read cursor past each. At a gap in sequence numbers, a record it
// does not know, or a record in the place of a write made through this
// replica (ownRead), it stops and says why: the stream must be reloaded.
func (f *Follower) hand(ctx context.Context, i int, changes []redisstore.Change) (reload string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range changes {
		if ch.Op == redisstore.OpUnreadable {
			return "a record cannot be read: " + ch.Problem
		}
		if ch.Seq != f.cursors[i].Seq+1 {
			return fmt.Sprintf("record %d follows %d: records were trimmed or lost", ch.Seq, f.cursors[i].Seq)
		}
		switch ch.Op {
		case redisstore.OpAccount, redisstore.OpCampaign, redisstore.OpStores, redisstore.OpReload, redisstore.OpStock:
		default:
			return fmt.Sprintf("record %d has operation %q, unknown to this build", ch.Seq, ch.Op)
		}
		if reason := f.ownRead(i, ch); reason != "" {
			return reason
		}
		r := &record{Change: ch, stream: i}
		f.pending[i] = append(f.pending[i], r)
		f.queued[i]++
		f.cursors[i] = ch.Cursor
		l := f.byKey[ch.AdvertiserID]
		if l == nil {
			l = &lane{key: ch.AdvertiserID}
			f.byKey[l.key] = l
			f.lanes.Add(1)
			go f.drain(ctx, l)
		}
		l.queue = append(l.queue, r)
	}
	return ""
}

// settle waits until the lanes have applied, or dropped after an error,
// every record handed to them. After an error it moves each stream's read
// cursor back to the last record before which all are applied, so that the
// next poll reads again what was not, and returns the error.
func (f *Follower) settle() error {
	f.lanes.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.laneErr
	if err == nil {
		return nil
	}
	f.laneErr = nil
	copy(f.cursors, f.done)
	clear(f.pending)
	clear(f.queued)
	return err
}

// drain is a lane's goroutine: it applies the lane's records until its
// queue is empty, or until a lane fails; then it drops what is left, for
// the next poll to read again.
func (f *Follower) drain(ctx context.Context, l *lane) {
	defer f.lanes.Done()
	for {
		f.mu.Lock()
		recs := l.queue
		l.queue = nil
		if len(recs) == 0 || f.laneErr != nil {
			delete(f.byKey, l.key)
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		for len(recs) > 0 {
			n := 1 // a run of records of one stream, applied under one lock
			for n < len(recs) && recs[n].stream == recs[0].stream {
				n++
			}
			if err := f.apply(ctx, l.key, recs[:n]); err != nil {
				f.mu.Lock()
				if f.laneErr == nil {
					f.laneErr = err
				}
				f.mu.Unlock()
				break
			}
			recs = recs[n:]
		}
	}
}

// verify reloads what Redis lost: everything on a new epoch; a stream
// whose sequence number went back below what this replica read, or whose
// last generated ID went back below the ID of the last record it read. The
// second catches a failover to a Redis replica that missed the last records
// and whose clock is behind: writes since have taken the sequence number
// back up, but XADD gave their records IDs below this replica's cursor,
// which reading after the cursor never returns. (The last generated ID, not
// the last record's: a stream trimmed empty keeps the one and not the
// other. A stream that does not exist reads as "0-0", as does the cursor
// of a stream never written.) It finds such records only while the
// stream's IDs are all below the cursor: once one past it is read, hand
// reloads unless it happens to carry the next sequence number. It lets the
// lanes finish first, so that a reload is the last word.
//
// So it does for a stream whose sequence number or last generated ID is
// below the last write made through this replica whose record the follower
// has not read (wrote): Redis lost that write, which the index holds. The
// writes are taken before Redis is asked, so that one acknowledged in
// between is not taken for lost.
func (f *Follower) verify(ctx context.Context) error {
	epoch, err := f.cfg.Store.Epoch(ctx)
	if err != nil {
		return err
	}
	if epoch != f.epoch {
		if err := f.settle(); err != nil {
			return err
		}
		f.cfg.Logger.Warn("replica: Redis lost its data (new epoch); reloading everything", "was", f.epoch, "now", epoch)
		for _, i := range f.order {
			if err := f.reload(ctx, i, "new epoch"); err != nil {
				return err
			}
		}
		f.epoch = epoch
		return nil
	}
	mine := make([]redisstore.Cursor, len(f.streams)) // per stream: the last own write waiting
	f.mu.Lock()
	for i, o := range f.own {
		if len(o) > 0 {
			mine[i] = o[len(o)-1].Cursor
		}
	}
	f.mu.Unlock()
	seqs, err := f.cfg.Store.Seqs(ctx, f.streams)
	if err != nil {
		return err
	}
	for _, i := range f.order {
		var reason string
		switch now, read, own := seqs[i], f.cursors[i], mine[i]; {
		case now.Seq < read.Seq:
			reason = fmt.Sprintf("Redis went back from record %d to %d", read.Seq, now.Seq)
		case redisstore.CompareIDs(now.ID, read.ID) < 0:
			reason = fmt.Sprintf("Redis went back from entry ID %s to %s", read.ID, now.ID)
		case now.Seq < own.Seq:
			reason = fmt.Sprintf("Redis lost record %d, written through this replica: the stream is back at %d", own.Seq, now.Seq)
		case own.Seq > 0 && redisstore.CompareIDs(now.ID, own.ID) < 0:
			reason = fmt.Sprintf("Redis lost record %d (entry ID %s), written through this replica: the last ID it generated is %s", own.Seq, own.ID, now.ID)
		default:
			continue
		}
		if err := f.settleAndReload(ctx, i, reason); err != nil {
			return err
		}
	}
	return nil
}

// apply applies a lane's records of one stream, all of advertiser key (or
// all of the campaigns' stream), in order, under the catalog lock that
// orders them with this replica's writes of the same objects.
func (f *Follower) apply(ctx context.Context, key string, recs []*record) error {
	st := f.streams[recs[0].stream]
	lock := f.cfg.Catalog.ApplyCampaigns
	if st != redisstore.CampaignsStream {
		lock = func(fn func() error) error { return f.cfg.Catalog.ApplyAdvertiser(key, fn) }
	}
	err := lock(func() error {
		// The stock records' rows as Redis holds them now, read inside the
		// lock (no write of this replica's can land between the read and
		// the index) and for all of them in one round trip.
		var reads []redisstore.StockRead
		for _, r := range recs {
			if r.Op == redisstore.OpStock {
				reads = append(reads, redisstore.StockRead{AdvertiserID: r.AdvertiserID, Rows: r.Stock})
			}
		}
		var stock [][]campaigns.StockUpdate
		if len(reads) > 0 {
			var err error
			if stock, err = f.cfg.Store.Stock(ctx, reads); err != nil {
				return err
			}
		}
		for _, r := range recs {
			var now []campaigns.StockUpdate
			if r.Op == redisstore.OpStock {
				now, stock = stock[0], stock[1:]
			}
			if f.applying != nil {
				f.applying(r.Change)
			}
			if err := f.applyOne(ctx, r.Change, now); err != nil {
				return fmt.Errorf("record %d: %w", r.Seq, err)
			}
			f.markApplied(r)
			if f.afterApply != nil {
				f.afterApply(st)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply stream %d: %w", st, err)
	}
	return nil
}

// markApplied marks a record applied and moves its stream's applied cursor
// over the records now applied in a row.
func (f *Follower) markApplied(r *record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.applied = true
	r.StoreIDs, r.Stock = nil, nil // it waits in pending only for its cursor
	f.applied++
	f.queued[r.stream]--
	p := f.pending[r.stream]
	for len(p) > 0 && p[0].applied {
		f.done[r.stream] = p[0].Cursor
		p[0] = nil
		p = p[1:]
	}
	f.pending[r.stream] = p
}

// applyOne applies one record; called by apply, inside the catalog's lock.
// stock is a stock record's rows as Redis holds them now (Store.Stock), read
// for the whole run by apply.
func (f *Follower) applyOne(ctx context.Context, ch redisstore.Change, stock []campaigns.StockUpdate) error {
	st, ix := f.cfg.Store, f.cfg.Index
	switch ch.Op {
	case redisstore.OpAccount:
		f.cfg.Keys.ForgetAccount(ch.ObjectID)
	case redisstore.OpCampaign:
		c, err := st.Campaign(ctx, ch.ObjectID)
		switch {
		case campaigns.ErrorCode(err) == campaigns.NotFound:
			ix.DeleteCampaign(ch.ObjectID)
		case err != nil:
			return err
		default:
			ix.PutCampaign(c)
		}
	case redisstore.OpStores:
		found, missing, err := st.StoresByID(ctx, ch.AdvertiserID, ch.StoreIDs)
		if err != nil {
			return err
		}
		if ch.Deleted {
			// Deleted with their stock rows. A store Redis holds again was
			// put since, perhaps by this replica, its write acknowledged and
			// in the index: deleting it here would undo that until the put's
			// own record came. Upserting it would keep the stock marks the
			// delete removed from Redis, so the advertiser is reloaded (a
			// delete and a put between two polls are rare).
			if len(found) > 0 {
				return f.reloadAdvertisers(ctx, ch.AdvertiserID)
			}
			for _, id := range missing {
				ix.DeleteStore(ch.AdvertiserID, id)
			}
			return nil
		}
		if len(found) > 0 {
			if err := ix.PutStores(ch.AdvertiserID, found); err != nil {
				return fmt.Errorf("index stores of %s: %w", ch.AdvertiserID, err)
			}
		}
		for _, id := range missing {
			ix.DeleteStore(ch.AdvertiserID, id)
		}
	case redisstore.OpReload:
		if err := f.reloadAdvertisers(ctx, ch.AdvertiserID); err != nil {
			return err
		}
	case redisstore.OpStock:
		// The rows as Redis holds them now, not as the record wrote them:
		// this replica may have written them since (after this poll read
		// the feed), and its acknowledged write must not be undone.
		ix.SetStock(ch.AdvertiserID, stock)
	default:
		return fmt.Errorf("operation %q unknown to this build", ch.Op) // hand lets none through
	}
	return nil
}

// settleAndReload lets the lanes finish, then reloads stream i.
func (f *Follower) settleAndReload(ctx context.Context, i int, reason string) error {
	if err := f.settle(); err != nil {
		return err
	}
	return f.reload(ctx, i, reason)
}

// reload makes what stream i covers in the index equal to the store, and
// moves the stream's cursors to the head taken before reading. It holds up
// every write (catalog.Apply); callers let the lanes finish first (settle).
func (f *Follower) reload(ctx context.Context, i int, reason string) error {
	st := f.streams[i]
	start := time.Now()
	err := f.cfg.Catalog.Apply(func() error {
		f.mu.Lock()
		told := f.told // the writes told by now are in Redis before the heads, or lost
		f.mu.Unlock()
		heads, err := f.cfg.Store.Heads(ctx, []redisstore.Stream{st})
		if err != nil {
			return err
		}
		if st == 0 {
			cs, err := f.cfg.Store.Campaigns(ctx, "")
			if err != nil {
				return err
			}
			f.cfg.Index.ReplaceCampaigns(cs)
			f.cfg.Keys.Forget()
		} else {
			advs, err := f.cfg.Store.Advertisers(ctx, st)
			if err != nil {
				return err
			}
			// Advertisers the index holds but Redis no longer knows (it
			// lost them) must lose their stores and stock marks too,
			// marks of an advertiser without stores included.
			for _, adv := range f.cfg.Index.Advertisers() {
				if f.cfg.Store.StreamOf(adv) == st && !slices.Contains(advs, adv) {
					advs = append(advs, adv)
				}
			}
			if err := f.reloadAdvertisers(ctx, advs...); err != nil {
				return err
			}
		}
		f.cursors[i] = heads[0]
		f.mu.Lock()
		f.done[i] = heads[0] // the lanes are idle (settle): nothing is pending
		// The index now holds what Redis holds, the writes made through
		// this replica before the heads included or not: none of them is
		// left to check. (Apply holds up the catalog's campaign and store
		// writes, but not account writes, which may be told meanwhile.)
		f.own[i] = slices.DeleteFunc(f.own[i], func(w ownWrite) bool { return w.told <= told })
		if f.ownLost[i].told <= told {
			f.ownLost[i] = ownLoss{}
		}
		f.mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("reload stream %d: %w", st, err)
	}
	f.mu.Lock()
	f.reloads++
	f.mu.Unlock()
	f.cfg.Logger.Info("replica: reloaded from Redis", "stream", int(st), "reason", reason, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// reloadAdvertisers replaces the advertisers' stores and stock in the index
// with what the store holds, in one index update.
func (f *Follower) reloadAdvertisers(ctx context.Context, advs ...string) error {
	sets := make([]serving.StoreSet, len(advs))
	for i, adv := range advs {
		set := &sets[i]
		set.AdvertiserID = adv
		// As one upload left them: read in round trips, a large list could
		// otherwise be part of a later upload too, served for seconds.
		stores, mixed, err := f.cfg.Store.StoresAtOnce(ctx, adv)
		if err != nil {
			return err
		}
		if mixed {
			f.cfg.Logger.Warn("stores read while uploads kept changing them; the later uploads' records replace what was read", "advertiser", adv)
		}
		set.Stores = stores
		err = f.cfg.Store.OutOfStock(ctx, adv, func(k campaigns.StockKey) bool {
			set.OutOfStock = append(set.OutOfStock, k)
			return true
		})
		if err != nil {
			return err
		}
	}
	if err := f.cfg.Index.ReplaceStores(sets...); err != nil {
		return fmt.Errorf("index stores: %w", err)
	}
	return nil
}
