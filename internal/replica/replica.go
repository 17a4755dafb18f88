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
// campaign or store list is cheap. Records are applied inside
// catalog.Service.Apply,
// so that they never overtake, or are overtaken by, this replica's own
// writes.
//
// A stream whose next record does not carry the next sequence number has
// lost records this replica needed (it was away longer than the feed's
// retention, or Redis lost the tail of its data); the Follower then reloads
// what that stream covers: every campaign, or every advertiser of a store
// shard. A new epoch means Redis lost everything; it reloads all. It checks
// sequence numbers and the epoch every few seconds and whenever Redis comes
// back after an error, so that losses are found even when nothing is written.
//
// Polling, not XREAD BLOCK: the feed has one stream per store shard (a
// record must share its slot with the data it describes), and in Redis
// Cluster one XREAD cannot block on streams of different slots. Blocking on
// each would tie up a connection per stream per replica; one pipelined
// non-blocking XREAD per stream every 100 ms costs seventeen cheap commands
// and bounds the delay to a tenth of the one second allowed.
package replica

import (
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
	Check   time.Duration // how often sequence numbers and the epoch are verified; DefaultCheck when 0
}

// Follower keeps an index in step with the store. Its goroutine runs from
// Start until Close.
type Follower struct {
	cfg     Config
	streams []redisstore.Stream
	order   []int // indexes of streams in the order a poll applies them (step)

	// Owned by the goroutine (and by Start before it runs).
	epoch   string
	cursors []redisstore.Cursor

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	err      error     // the last poll's error; nil when it succeeded
	errSince time.Time // when the current run of errors began
	applied  int64     // records applied, for tests and logs
	reloads  int64     // streams reloaded

	// afterRead and afterApply, when set (by tests, before the goroutine
	// runs), are called after a poll has read the feed, before applying
	// it, and after each stream's records of a poll are applied.
	afterRead  func()
	afterApply func(redisstore.Stream)
}

// Start loads the index from the store, then follows the feed until Close.
// It takes the feed's heads before loading, so that a write landing during
// the load is applied after it.
func Start(ctx context.Context, cfg Config) (*Follower, error) {
	f, err := load(ctx, cfg)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Add(1)
	go f.run(runCtx)
	return f, nil
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
	f := &Follower{cfg: cfg, streams: cfg.Store.Streams()}
	for _, campaignsLast := range []bool{false, true} {
		for i, st := range f.streams {
			if (st == redisstore.CampaignsStream) == campaignsLast {
				f.order = append(f.order, i)
			}
		}
	}
	var err error
	if f.epoch, err = cfg.Store.Epoch(ctx); err != nil {
		return nil, fmt.Errorf("start replica: %w", err)
	}
	if f.cursors, err = cfg.Store.Heads(ctx, f.streams); err != nil {
		return nil, fmt.Errorf("start replica: %w", err)
	}
	if err := cfg.Catalog.Load(ctx); err != nil {
		return nil, fmt.Errorf("start replica: %w", err)
	}
	return f, nil
}

// Close stops following and waits for the goroutine. It is safe to call
// more than once.
func (f *Follower) Close() error {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	return nil
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
	log := f.cfg.Logger
	wait := f.cfg.Poll
	lastCheck := time.Now()
	failing := false
	for {
		check := failing || time.Since(lastCheck) >= f.cfg.Check
		more, err := f.step(ctx, check)
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
			wait = min(2*wait, maxBackoff)
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
			wait = f.cfg.Poll
			if more {
				wait = 0
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// step verifies the feed when check is set, then reads and applies one batch
// of every stream. more reports that a stream had more records waiting.
func (f *Follower) step(ctx context.Context, check bool) (more bool, err error) {
	if check {
		if err := f.verify(ctx); err != nil {
			return false, err
		}
	}
	batches, err := f.cfg.Store.ReadFeed(ctx, f.streams, f.cursors, batch)
	if err != nil {
		return false, err
	}
	if f.afterRead != nil {
		f.afterRead()
	}
	// Store shards first, the campaigns' stream last: when one poll brings
	// a new advertiser's stores and its campaigns, the campaigns go live
	// with their stores already indexed, never for a moment with nothing
	// to lead to. (The other way round, a campaign going with its stores,
	// the stores leave first: a campaign served meanwhile leads to one of
	// the stores still listed, never to one removed.)
	for _, i := range f.order {
		changes := batches[i]
		if len(changes) == 0 {
			continue
		}
		more = more || len(changes) == batch
		if err := f.apply(ctx, i, changes); err != nil {
			return false, err
		}
		if f.afterApply != nil {
			f.afterApply(f.streams[i])
		}
	}
	return more, nil
}

// verify reloads what Redis lost: everything on a new epoch, a stream whose
// sequence number went back below what this replica applied.
func (f *Follower) verify(ctx context.Context) error {
	epoch, err := f.cfg.Store.Epoch(ctx)
	if err != nil {
		return err
	}
	if epoch != f.epoch {
		f.cfg.Logger.Warn("replica: Redis lost its data (new epoch); reloading everything", "was", f.epoch, "now", epoch)
		for _, i := range f.order {
			if err := f.reload(ctx, i, "new epoch"); err != nil {
				return err
			}
		}
		f.epoch = epoch
		return nil
	}
	seqs, err := f.cfg.Store.Seqs(ctx, f.streams)
	if err != nil {
		return err
	}
	for _, i := range f.order {
		if seq := seqs[i]; seq < f.cursors[i].Seq {
			if err := f.reload(ctx, i, fmt.Sprintf("Redis went back from record %d to %d", f.cursors[i].Seq, seq)); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply applies the records of stream i in order, advancing its cursor
// after each; a gap in sequence numbers or a record it does not know makes
// it reload the stream instead.
func (f *Follower) apply(ctx context.Context, i int, changes []redisstore.Change) error {
	var reason string
	err := f.cfg.Catalog.Apply(func() error {
		// The stock records' rows as Redis holds them now, read inside
		// Apply (no write of this replica's can land between the read and
		// the index) and for all of them in one round trip.
		var reads []redisstore.StockRead
		for _, ch := range changes {
			if ch.Op == redisstore.OpStock {
				reads = append(reads, redisstore.StockRead{AdvertiserID: ch.AdvertiserID, Rows: ch.Stock})
			}
		}
		var stock [][]campaigns.StockUpdate
		if len(reads) > 0 {
			var err error
			if stock, err = f.cfg.Store.Stock(ctx, reads); err != nil {
				return err
			}
		}
		for _, ch := range changes {
			if ch.Seq != f.cursors[i].Seq+1 {
				reason = fmt.Sprintf("record %d follows %d: records were trimmed or lost", ch.Seq, f.cursors[i].Seq)
				return nil
			}
			var now []campaigns.StockUpdate
			if ch.Op == redisstore.OpStock {
				now, stock = stock[0], stock[1:]
			}
			known, err := f.applyOne(ctx, ch, now)
			if err != nil {
				return err
			}
			if !known {
				reason = fmt.Sprintf("record %d has operation %q, unknown to this build", ch.Seq, ch.Op)
				return nil
			}
			f.cursors[i] = ch.Cursor
			f.mu.Lock()
			f.applied++
			f.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply stream %d: %w", f.streams[i], err)
	}
	if reason != "" {
		return f.reload(ctx, i, reason)
	}
	return nil
}

// applyOne applies one record; called inside catalog.Apply. It reports false
// for an operation it does not know. stock is a stock record's rows as Redis
// holds them now (Store.Stock), read for the whole batch by apply.
func (f *Follower) applyOne(ctx context.Context, ch redisstore.Change, stock []campaigns.StockUpdate) (bool, error) {
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
			return true, err
		default:
			ix.PutCampaign(c)
		}
	case redisstore.OpStores:
		found, missing, err := st.StoresByID(ctx, ch.AdvertiserID, ch.StoreIDs)
		if err != nil {
			return true, err
		}
		if ch.Deleted {
			// Deleted with their stock rows. A store Redis holds again was
			// put since, perhaps by this replica, its write acknowledged and
			// in the index: deleting it here would undo that until the put's
			// own record came. Upserting it would keep the stock marks the
			// delete removed from Redis, so the advertiser is reloaded (a
			// delete and a put between two polls are rare).
			if len(found) > 0 {
				return true, f.reloadAdvertisers(ctx, ch.AdvertiserID)
			}
			for _, id := range missing {
				ix.DeleteStore(ch.AdvertiserID, id)
			}
			return true, nil
		}
		if len(found) > 0 {
			if err := ix.PutStores(ch.AdvertiserID, found); err != nil {
				return true, fmt.Errorf("index stores of %s: %w", ch.AdvertiserID, err)
			}
		}
		for _, id := range missing {
			ix.DeleteStore(ch.AdvertiserID, id)
		}
	case redisstore.OpReload:
		if err := f.reloadAdvertisers(ctx, ch.AdvertiserID); err != nil {
			return true, err
		}
	case redisstore.OpStock:
		// The rows as Redis holds them now, not as the record wrote them:
		// this replica may have written them since (after this poll read
		// the feed), and its acknowledged write must not be undone.
		ix.SetStock(ch.AdvertiserID, stock)
	default:
		return false, nil
	}
	return true, nil
}

// reload makes what stream i covers in the index equal to the store, and
// moves the stream's cursor to the head taken before reading.
func (f *Follower) reload(ctx context.Context, i int, reason string) error {
	st := f.streams[i]
	start := time.Now()
	err := f.cfg.Catalog.Apply(func() error {
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
		err := f.cfg.Store.Stores(ctx, adv, func(s *campaigns.Store) bool {
			set.Stores = append(set.Stores, *s)
			return true
		})
		if err != nil {
			return err
		}
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
