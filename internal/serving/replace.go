package serving

import (
	"slices"

	"github.com/navad/navad/campaigns"
)

// The methods in this file let a replica catch up with a shared store whose
// changes it missed: instead of applying a change, it makes a part of the
// index equal to what the store holds now.

// StoreSet is everything the index holds of one advertiser's stores: the
// stores, and which of their products are out of stock.
type StoreSet struct {
	AdvertiserID string
	Stores       []campaigns.Store
	OutOfStock   []campaigns.StockKey // marks of other advertisers are ignored
}

// ReplaceStores makes the stores and out-of-stock marks of each advertiser
// in sets exactly the given ones: stores it held but the set lacks are
// removed, the rest upserted. It rebuilds every offer of those advertisers,
// so its cost grows with their stores; decisions keep reading the previous
// snapshot until the new one is published whole. The stores must be valid.
func (ix *Index) ReplaceStores(sets ...StoreSet) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	replaced := make(map[string]bool, len(sets))
	for _, set := range sets {
		replaced[set.AdvertiserID] = true
	}
	for k := range ix.out {
		if replaced[k.AdvertiserID] {
			delete(ix.out, k)
		}
	}
	ix.pending = newPresenceEdits()
	defer ix.flushPresence() // also on error: the offers rebuilt so far keep their marks
	for _, set := range sets {
		adv := set.AdvertiserID
		for _, k := range set.OutOfStock {
			if k.AdvertiserID == adv {
				ix.out[k] = struct{}{}
			}
		}
		keep := make(map[string]bool, len(set.Stores))
		for i := range set.Stores {
			keep[set.Stores[i].ID] = true
		}
		gone := offerChanges{full: make(map[string]bool)}
		held := ix.stores[adv]
		for id, st := range held {
			if !keep[id] {
				delete(held, id)
				ix.storeN--
				for _, p := range st.Products {
					gone.full[p] = true
				}
			}
		}
		// Offers that lost stores first, then every offer of the stores
		// that remain: putStoresLocked counts each of them as added, so
		// every offer is rebuilt and takes its stock bits from ix.out.
		ix.rebuildOffers(adv, gone)
		if err := ix.putStoresLocked(adv, set.Stores); err != nil {
			return err
		}
	}
	ix.flushPresence()
	ix.publish(&Snapshot{})
	return nil
}

// ReplaceCampaigns makes the index's campaigns exactly cs.
func (ix *Index) ReplaceCampaigns(cs []*campaigns.Campaign) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	clear(ix.campaigns)
	for _, c := range cs {
		ix.putCampaignLocked(c)
	}
	ix.publishCampaigns()
}

// Advertisers returns the advertisers that have stores in the index, sorted.
func (ix *Index) Advertisers() []string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	advs := make([]string, 0, len(ix.stores))
	for adv, stores := range ix.stores {
		if len(stores) > 0 {
			advs = append(advs, adv)
		}
	}
	slices.Sort(advs)
	return advs
}

// presenceEdits accumulates the presence changes of several offer rebuilds:
// for each changed offer, its marks before the first change and after the
// last.
type presenceEdits struct {
	prev, next [numTiers]map[uint32][]uint64
}

func newPresenceEdits() *presenceEdits {
	e := new(presenceEdits)
	for t := range numTiers {
		e.prev[t], e.next[t] = make(map[uint32][]uint64), make(map[uint32][]uint64)
	}
	return e
}

func (e *presenceEdits) add(prev, next [numTiers]map[uint32][]uint64) {
	for t := range numTiers {
		for id, cells := range next[t] {
			if _, seen := e.next[t][id]; !seen {
				e.prev[t][id] = prev[t][id]
			}
			e.next[t][id] = cells
		}
	}
}

// flushPresence applies and ends the pending presence changes, if any.
func (ix *Index) flushPresence() {
	if e := ix.pending; e != nil {
		ix.pending = nil
		ix.updatePresence(e.prev, e.next)
	}
}
