package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/navad/navad/campaigns"
)

// Caps counts the ads served of each campaign, so that delivery caps (per
// business day and in total) and frequency caps (per user and period) hold.
// It is apart from Catalog because it is written on the decision path, at
// the rate ads are served, and because replicas must share it exactly: on
// Redis every replica reserves against the same counters.
//
// Reserve is atomic: it checks every counter a request names and
// increments all of them, or, when any of them is at its limit, refuses and
// increments none. An ad is served only after its reservation succeeded, so
// counts are of ads served, never of ads refused.
//
// Lease and Return let a replica count delivery caps in blocks instead of
// an ad at a time (package pacing leases when the counters are shared, on
// Redis): Lease counts several ads against the total and the day at once,
// as many as the limits leave; the replica serves them without asking, and
// Returns those it did not serve. The counts then include ads leased and
// not served yet, so a limit can be reached a little before the last of
// its ads is served, never passed.
//
// Times are the caller's: a request carries its Now, and per-user windows
// open and close by it, not by the backend's clock (replicas keep their
// clocks in step with NTP). A backend may forget a counter once it can no
// longer matter (a day's count well after the day ends, a user's count once
// the window closes), measuring that interval from the request's Now, as
// Redis's PEXPIRE does.
//
// Unlike Catalog's writes, a reservation is not made durable before Reserve
// returns: that would cost a disk flush per ad served. Each backend says
// what a crash may lose (boltstore.Caps: the last second's counts; Redis:
// what its AOF fsync policy allows).
//
// On Redis, Reserve is one Lua script over the campaign's keys, which share
// a hash slot so that it runs on a cluster too (redisstore/caps.go):
// {navad:caps:cmp_1}:total, {navad:caps:cmp_1}:day:2026-11-27 and
// {navad:caps:cmp_1}:user:<hash of the uid> (a hash of count and window
// end): read them, treat a window whose end is not after Now as closed,
// refuse if any count is at its limit, else increment all three and
// PEXPIRE the day and user keys relative to Now.
//
// A deleted campaign's counters are freed by the Catalog of the same
// backend (Catalog.DeleteCampaign), even against reservations still in
// flight for it.
//
// Package storagetest holds the contract suite (RunCaps) every backend
// passes; methods return the error codes named in their comments, any other
// error is internal, and after Close every method fails.
type Caps interface {
	// Reserve counts one served ad of r.CampaignID against its total, its
	// business day r.Day and, when r.UID and r.UserLimit are set, r.UID's
	// current window, provided that none of them has reached its limit,
	// and reports whether it did. When it reports false nothing was
	// counted. Invalid when r is malformed (see CapRequest.Check).
	Reserve(ctx context.Context, r CapRequest) (bool, error)
	// Lease counts up to want ads of r.CampaignID at once against its
	// total and its business day r.Day, for a replica to serve them
	// without asking again: it counts granted = min(want, what TotalLimit
	// and DailyLimit leave), and returns it with what the limits leave
	// after it (the smaller of the two; math.MaxInt64 when neither is
	// set). A lease counts nothing per user: r must not name a uid, and
	// want must be from 1 to MaxLease (else Invalid). id names the lease
	// (see LeaseID): sent again under the Seq of its holder's last lease
	// of the campaign, a Lease counts nothing and grants what that one
	// granted, so that a Lease that failed, which may have happened (its
	// reply lost), can be sent again, and so can a client library's
	// retries; under a lower Seq it counts and grants nothing. Invalid
	// when id is malformed. An error wraps ErrNotApplied when the lease
	// certainly did not reach the counters.
	Lease(ctx context.Context, r CapRequest, want int64, id LeaseID) (granted, left int64, err error)
	// Return gives back n ads of a lease that were not served: the
	// campaign's total and its count on day go down by n, never below
	// zero. A day no longer kept is left alone. gb names the give-back
	// (see GiveBack): one whose Seq is not above the highest its giver has
	// had applied for the campaign takes nothing back, so a Return that
	// failed, which may have happened (its reply lost), can be sent again,
	// and so can a client library's retries. Invalid when n < 1 or gb is
	// malformed. An error wraps ErrNotApplied when the return certainly
	// did not reach the counters.
	Return(ctx context.Context, campaignID, day string, n int64, gb GiveBack) error
	// Served returns the counts of a campaign: in total, on business day
	// day, and of uid in its window open at now (0 when none is open or
	// uid is "").
	Served(ctx context.Context, campaignID, day, uid string, now time.Time) (CapCounts, error)
	// Close makes what was counted durable as far as the backend promises
	// and releases it. Closing again does nothing.
	Close() error
}

// ErrNotApplied is wrapped by a Caps error that certainly changed nothing:
// the call never reached the counters (Redis refused the connection, the
// context was done before it was sent, the Caps is closed).
var ErrNotApplied = errors.New("not applied")

// GiveBack names a Return. By is the giver (a Pacer, NewGiver), Seq the
// number of its give-back, higher for each it makes. A backend keeps, for
// each campaign and giver, the highest Seq it applied, for GiverTTL after
// the last, and applies a Return only when its Seq is higher: sent again,
// a Return takes nothing back twice. A giver sends each campaign's Returns
// in the order of their Seq, and one that fails again before any later
// one (else the later one's Seq would make the backend skip it).
type GiveBack struct {
	By  string
	Seq uint64
}

// LeaseID names a Lease. By is the holder (a Pacer, NewGiver), Seq the
// number of its lease, higher for each it asks for. A backend keeps, for
// each campaign and holder, the Seq of the last lease it applied and what
// that lease granted, for GiverTTL after it: a Lease sent again under that
// Seq grants the same ads without counting them again. A holder asks for
// each campaign's leases one at a time, and sends one that failed again
// before it asks for another of the campaign (else the later one's Seq
// would make the backend grant nothing for it, and the ads it counted, if
// it did, would be held by no one).
type LeaseID struct {
	By  string
	Seq uint64
}

// Check reports whether id can name a Lease: By and Seq as a GiveBack's
// (Invalid otherwise).
func (id LeaseID) Check() error { return checkNumbered("lease", "holder", id.By, id.Seq) }

// GiverTTL is how long a backend keeps a giver's highest Seq for a
// campaign after its last Return, and a holder's last lease: a giver
// retries a Return, and a holder a Lease, within it.
const GiverTTL = 24 * time.Hour

// NewGiver returns a new random giver ID.
func NewGiver() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Check reports whether gb can name a Return: By of 1 to 64 letters,
// digits, '-' or '_', and Seq from 1 to 2⁵³ (Invalid otherwise).
func (gb GiveBack) Check() error { return checkNumbered("give-back", "giver", gb.By, gb.Seq) }

// checkNumbered checks a numbered call's name: by is who numbers its calls
// (named who in the message), seq its number for the call, what the call.
func checkNumbered(what, who, by string, seq uint64) error {
	if seq < 1 || seq > 1<<53 {
		return campaigns.Errorf(campaigns.Invalid, "%s number %d: want 1 to 2^53", what, seq)
	}
	if len(by) < 1 || len(by) > 64 {
		return campaigns.Errorf(campaigns.Invalid, "%s of %d bytes: want 1 to 64", who, len(by))
	}
	for i := range len(by) {
		switch c := by[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return campaigns.Errorf(campaigns.Invalid, "%s %q: want letters, digits, '-' or '_'", who, by)
		}
	}
	return nil
}

// CapRequest is one served ad to count. A zero limit is no limit of that
// kind; the counts are kept all the same.
type CapRequest struct {
	CampaignID string
	// Now is when the ad is served.
	Now time.Time

	// TotalLimit caps the ads served over the campaign's life.
	TotalLimit int64

	// Day is the business day of Now ("2006-01-02" in the business time
	// zone), DayEnd the instant it ends; DailyLimit caps the ads served on
	// it. Days are counted apart, so a new day starts from zero.
	Day        string
	DayEnd     time.Time
	DailyLimit int64

	// UID is the user's opaque key; "" means none, and then no per-user
	// cap applies. UserLimit caps the ads served to one user in a window of
	// UserPeriod, which opens with the first ad counted for the user while
	// no window is open: a user who has seen UserLimit ads waits until
	// UserPeriod after the first of them.
	UID        string
	UserLimit  int64
	UserPeriod time.Duration

	// Leased says the ad was taken from a Lease, which counted it against
	// the total and the day: Reserve then checks and counts r.UID's window
	// only. It needs a user cap (else Invalid).
	Leased bool

	// Slot is the caller's number for the campaign, from 1 (0 for none),
	// usually the same for CampaignID in every request of this process. A
	// backend may use it to find the campaign's counters without hashing
	// the ID, but the ID decides: a slot that named another campaign
	// before, or a campaign under another slot, counts by ID.
	Slot uint32
}

// Check reports what is wrong with r as an Invalid *campaigns.Error, or nil.
func (r *CapRequest) Check() error {
	var p campaigns.Problems
	if r.CampaignID == "" {
		p.Add("campaign_id", "is required")
	}
	if r.Now.IsZero() {
		p.Add("now", "is required")
	}
	if r.Day == "" {
		p.Add("day", "is required")
	}
	if r.DayEnd.IsZero() {
		p.Add("day_end", "is required")
	}
	if r.TotalLimit < 0 || r.DailyLimit < 0 || r.UserLimit < 0 {
		p.Add("limits", "must not be negative")
	}
	if r.UserLimit > 0 && r.UserPeriod <= 0 {
		p.Add("user_period", "must be positive with a user limit")
	}
	if r.Leased && !r.UserCapped() {
		p.Add("leased", "needs a uid and a user limit")
	}
	return p.Err()
}

// MaxLease bounds the ads one Lease asks for (package pacing asks for at
// most a thousand): without limits a lease grants what it is asked, and a
// larger want would wrap a campaign's total round to a negative count, or,
// on Redis, pass the integers that Lua's numbers hold exactly.
const MaxLease = 1 << 31

// CheckLease reports what is wrong with a Lease of want ads of r, as an
// Invalid *campaigns.Error, or nil.
func (r *CapRequest) CheckLease(want int64) error {
	if err := r.Check(); err != nil {
		return err
	}
	var p campaigns.Problems
	if r.UID != "" || r.Leased {
		p.Add("uid", "a lease counts nothing per user")
	}
	if want < 1 || want > MaxLease {
		p.Add("want", "must be from 1 to %d", MaxLease)
	}
	return p.Err()
}

// UserCapped reports whether r counts against a per-user window.
func (r *CapRequest) UserCapped() bool { return r.UID != "" && r.UserLimit > 0 }

// CapCounts are the ads counted for a campaign.
type CapCounts struct {
	Total int64 // over the campaign's life
	Daily int64 // on the day asked for
	User  int64 // to the user asked for, in the window open then
}
