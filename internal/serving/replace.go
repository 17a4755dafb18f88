package serving

import (
	"slices"

	"github.com/navad/navad/campaigns"
)

// The methods in this file let a replica catch up with a shared store whose
// changes it missed: instead of applying a change, it makes a part of the
// index equal to what the store holds now.

// ReplaceStores makes the stores and out-of-stock marks of one advertiser
// exactly the given ones: stores it held but stores lacks are removed, the
// rest upserted, and only the marks in outOfStock (those of advertiserID)
// kept. It rebuilds every offer of the advertiser, so its cost grows with the
// advertiser's stores; decisions keep reading the previous snapshot until
// the new one is published whole. The stores must be valid.
func (ix *Index) ReplaceStores(advertiserID string, stores []campaigns.Store, outOfStock []campaigns.StockKey) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	keep := make(map[string]bool, len(stores))
	for i := range stores {
		keep[stores[i].ID] = true
	}
	gone := offerChanges{full: make(map[string]bool)}
	adv := ix.stores[advertiserID]
	for id, st := range adv {
		if !keep[id] {
			delete(adv, id)
			ix.storeN--
			for _, p := range st.Products {
				gone.full[p] = true
			}
		}
	}
	for k := range ix.out {
		if k.AdvertiserID == advertiserID {
			delete(ix.out, k)
		}
	}
	for _, k := range outOfStock {
		if k.AdvertiserID == advertiserID {
			ix.out[k] = struct{}{}
		}
	}
	// Offers that lost stores first, then every offer of the stores that
	// remain: putStoresLocked counts each of them as added, so every offer
	// is rebuilt and takes its stock bits from ix.out again.
	ix.rebuildOffers(advertiserID, gone)
	if err := ix.putStoresLocked(advertiserID, stores); err != nil {
		return err
	}
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
