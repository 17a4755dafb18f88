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
	ix.storesMu.Lock()
	defer ix.storesMu.Unlock()
	var rs []*offerRebuild
	for _, set := range sets {
		adv := set.AdvertiserID
		keep := make(map[string]bool, len(set.Stores))
		for i := range set.Stores {
			keep[set.Stores[i].ID] = true
		}
		ix.mu.Lock()
		out := newStockMarks()
		for _, k := range set.OutOfStock {
			if k.AdvertiserID == adv {
				out.add(stockKey{k.StoreID, k.ProductID})
			}
		}
		ix.out[adv] = out
		gone := offerChanges{full: make(map[string]bool)}
		dir := ix.stores[adv]
		for st := range dir.all() {
			if !keep[st.ID()] {
				dir.del(st.ID())
				for _, n := range st.products() {
					gone.full[ix.productName[n]] = true
				}
			}
		}
		rs = append(rs, ix.planLocked(adv, gone))
		ix.mu.Unlock()

		up, err := ix.planStores(adv, pointers(set.Stores))
		if err != nil {
			ix.rebuild(rs...) // what was removed stays removed
			return err
		}
		rs = append(rs, up)

		// Every remaining offer is rebuilt last, so that it takes its stock
		// bits from the new marks even where no store changed.
		ix.mu.Lock()
		all := offerChanges{refresh: make(map[string]bool)}
		for st := range ix.stores[adv].all() {
			for _, n := range st.products() {
				all.refresh[ix.productName[n]] = true
			}
		}
		rs = append(rs, ix.planLocked(adv, all))
		ix.mu.Unlock()
	}
	ix.rebuild(rs...)
	return nil
}

// ReplaceCampaigns makes the index's campaigns exactly cs, keywords
// included: the keyword index is built afresh over them, as at a load.
func (ix *Index) ReplaceCampaigns(cs []*campaigns.Campaign) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	clear(ix.campaigns)
	clear(ix.bySlot) // slots stay reserved in slotOf; a campaign not in cs has none filled
	for _, c := range cs {
		ix.putCampaignLocked(c)
	}
	ix.kwBase = nil
	clear(ix.delta)
	ix.publishCampaigns()
}

// Advertisers returns the advertisers of which the index holds stores or
// out-of-stock marks, sorted: those whose StoreSet a resync must replace.
// An advertiser may have marks and no store (a point-of-sale batch may come
// before the store list, or a replica applies a stock record of a store
// deleted since, before the delete's record); left out, its marks would
// outlive a resync that found it gone.
func (ix *Index) Advertisers() []string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	advs := make([]string, 0, len(ix.stores))
	for adv, stores := range ix.stores {
		if stores.len() > 0 {
			advs = append(advs, adv)
		}
	}
	for adv, out := range ix.out {
		if out.len() > 0 && ix.stores[adv].len() == 0 {
			advs = append(advs, adv)
		}
	}
	slices.Sort(advs)
	return advs
}
