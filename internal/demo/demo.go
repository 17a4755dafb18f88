// Package demo builds navad's demo world around Shinjuku and Shibuya from
// real OpenStreetMap store locations: restaurants that carry a beer,
// convenience stores that carry a canned coffee, a beer campaign triggered
// by izakaya searches, a coffee campaign triggered by searches for a drink,
// and a demo publisher. It goes through the same write path as the API.
package demo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
	"github.com/navad/navad/internal/osm"
	"github.com/navad/navad/internal/storage"
)

// Fixed identities of the demo world, so that the README's curl works as
// written. Never used without --demo.
const (
	PublisherKey  = "demo-publisher-key-0001"
	BeerKey       = "demo-beer-advertiser-key"
	CoffeeKey     = "demo-coffee-advertiser-key"
	AdminKey      = "demo-admin-key-0000000001"
	PublisherID   = "demo-navi"
	BeerID        = "demo-beer"
	CoffeeID      = "demo-coffee"
	BeerProduct   = "beer-350"
	CoffeeProduct = "coffee-can-185"
)

// Area is the demo's box around Shinjuku and Shibuya.
var Area = struct{ MinLat, MaxLat, MinLng, MaxLng float64 }{35.640, 35.715, 139.680, 139.720}

// World says what Load created.
type World struct {
	BeerStores, CoffeeStores int
	BeerCampaign             string
	CoffeeCampaign           string
}

// demoAccount is an account of the demo world.
type demoAccount struct {
	id, name, key string
	role          campaigns.Role
}

// accounts are the demo's accounts (the admin key is the server's, no
// account).
var accounts = []demoAccount{
	{PublisherID, "デモナビ (Demo Navi)", PublisherKey, campaigns.Publisher},
	{BeerID, "デモビール (Demo Beer)", BeerKey, campaigns.Advertiser},
	{CoffeeID, "デモ珈琲 (Demo Coffee)", CoffeeKey, campaigns.Advertiser},
}

// ErrNotDemoStore is what Load returns for a store that holds accounts
// other than the demo's.
var ErrNotDemoStore = errors.New("demo: the store holds accounts other than the demo's")

// Load creates (or refreshes) the demo world. It is idempotent: running it
// twice leaves the same world. The demo's keys are public (they are above),
// so it loads only into a store that holds no accounts but the demo's: a
// --demo pointed by mistake at a store that serves real traffic (a shared
// Redis) must not open it to anyone who has read this file.
func Load(ctx context.Context, store storage.Catalog, cat *catalog.Service) (*World, error) {
	accts, err := store.Accounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	for _, a := range accts {
		if !slices.ContainsFunc(accounts, func(d demoAccount) bool { return d.id == a.ID }) {
			return nil, fmt.Errorf("%w (%q): the demo's keys are public, so it loads only into a new store or an earlier demo's; run without --demo to serve this one", ErrNotDemoStore, a.ID)
		}
	}
	for _, a := range accounts {
		acct := &campaigns.Account{ID: a.id, Type: a.role, Name: a.name, KeyHashes: []string{auth.HashKey(a.key)}}
		err := store.CreateAccount(ctx, acct)
		if err != nil && campaigns.ErrorCode(err) != campaigns.Conflict {
			return nil, fmt.Errorf("demo account %s: %w", a.id, err)
		}
	}
	pois, err := osm.POIs()
	if err != nil {
		return nil, err
	}
	var beer, coffee []campaigns.Store
	for _, p := range pois {
		if p.Lat < Area.MinLat || p.Lat > Area.MaxLat || p.Lng < Area.MinLng || p.Lng > Area.MaxLng {
			continue
		}
		s := campaigns.Store{ID: p.ID, Name: p.Name, Lat: p.Lat, Lng: p.Lng}
		switch p.Category {
		case "restaurant":
			s.Products = []string{BeerProduct}
			beer = append(beer, s)
		case "convenience":
			s.Products = []string{CoffeeProduct}
			coffee = append(coffee, s)
		}
	}
	admin := &auth.Principal{ID: auth.AdminID, Role: campaigns.Admin}
	if _, err := cat.PutStores(ctx, admin, BeerID, beer, nil); err != nil {
		return nil, fmt.Errorf("demo beer stores: %w", err)
	}
	if _, err := cat.PutStores(ctx, admin, CoffeeID, coffee, nil); err != nil {
		return nil, fmt.Errorf("demo coffee stores: %w", err)
	}
	w := &World{BeerStores: len(beer), CoffeeStores: len(coffee), BeerCampaign: "demo-beer-izakaya", CoffeeCampaign: "demo-coffee-break"}
	for _, c := range []campaigns.Campaign{
		{
			ID: w.BeerCampaign, AdvertiserID: BeerID, Name: "居酒屋でデモビール",
			Keywords: []campaigns.Keyword{
				{Text: "居酒屋", Match: campaigns.Broad},
				{Text: "飲み屋", Match: campaigns.Broad},
				{Text: "焼き鳥", Match: campaigns.Broad},
			},
			NegativeKeywords: []string{"バイト", "求人"},
			ProductID:        BeerProduct,
			Creative: campaigns.Creative{
				Title: "今夜はデモビールで乾杯", Text: "近くのお店で生ビールが飲めます",
				LandingURL: "https://example.com/demo-beer",
			},
			RadiusM: 800, Priority: 5, BidCPM: 300,
		},
		{
			ID: w.CoffeeCampaign, AdvertiserID: CoffeeID, Name: "缶コーヒーでひと休み",
			Keywords: []campaigns.Keyword{
				{Text: "コーヒー", Match: campaigns.Broad},
				{Text: "缶コーヒー", Match: campaigns.Broad},
				{Text: "自販機", Match: campaigns.Broad},
			},
			ProductID: CoffeeProduct,
			Creative: campaigns.Creative{
				Title: "デモ珈琲でひと休み", Text: "歩いてすぐのコンビニにあります",
				LandingURL: "https://example.com/demo-coffee",
			},
			RadiusM: 500, Priority: 5, BidCPM: 200,
		},
	} {
		if _, err := cat.CreateCampaign(ctx, admin, c); err != nil {
			if campaigns.ErrorCode(err) != campaigns.Conflict {
				return nil, fmt.Errorf("demo campaign %s: %w", c.ID, err)
			}
			if _, err := cat.ReplaceCampaign(ctx, admin, c.ID, c); err != nil {
				return nil, fmt.Errorf("demo campaign %s: %w", c.ID, err)
			}
		}
	}
	return w, nil
}
