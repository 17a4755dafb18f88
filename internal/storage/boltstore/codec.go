package boltstore

import (
	"bytes"
	"fmt"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/record"
)

// Store records are package record's encoding (shared with redisstore);
// the store's advertiser and ID live in the key, not in the value.

var errCorrupt = record.ErrCorrupt

// storeDecoder decodes stores for one iteration, sharing the strings that
// repeat across them (advertiser IDs here, products and hours in record).
// It is not safe for concurrent use.
type storeDecoder struct {
	record.Interner
	lastAdv string
}

// decode decodes the store under key (advertiser ID NUL store ID) from v.
// The result shares no memory with key or v.
func (d *storeDecoder) decode(key, v []byte) (*campaigns.Store, error) {
	i := bytes.IndexByte(key, sep)
	if i < 0 {
		return nil, fmt.Errorf("store key %q: %w", key, errCorrupt)
	}
	if adv := key[:i]; string(adv) != d.lastAdv { // no allocation to compare
		d.lastAdv = string(adv)
	}
	s := &campaigns.Store{AdvertiserID: d.lastAdv}
	if err := record.DecodeStore(&d.Interner, s, key[i+1:], v); err != nil {
		return nil, fmt.Errorf("store %q of %q: %w", key[i+1:], d.lastAdv, err)
	}
	return s, nil
}
