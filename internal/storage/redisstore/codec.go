package redisstore

import (
	"fmt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/record"
)

// Store records are package record's encoding, the same bytes as the
// embedded store's: a national catalogue is a million of them, a new replica
// reads them all before it serves, and they are most of what Redis holds.
// The advertiser and store ID are the key and hash field, not the value.

var errCorrupt = record.ErrCorrupt

// storeDecoder decodes the stores of one iteration, sharing the strings
// that repeat across them. Not safe for concurrent use.
type storeDecoder struct {
	record.Interner
}

// decode decodes the value v of store id of advertiser adv.
func (d *storeDecoder) decode(adv, id, v string) (*campaigns.Store, error) {
	s := &campaigns.Store{AdvertiserID: adv}
	if err := record.DecodeStore(&d.Interner, s, id, v); err != nil {
		return nil, fmt.Errorf("store %q of %q: %w", id, adv, err)
	}
	return s, nil
}
