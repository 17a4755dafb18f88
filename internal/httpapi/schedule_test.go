package httpapi_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/navad/navad/geo"
)

// decide asks for ads near Shinjuku station and returns them.
func (e *opsEnv) decide(key string, v url.Values) adsBody {
	e.t.Helper()
	r := e.must(200, e.do("GET", "/v1/ads?"+v.Encode(), key, nil))
	var body adsBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		e.t.Fatal(err)
	}
	return body
}

// servedCampaigns returns the campaign IDs of a decision, in order.
func servedCampaigns(b adsBody) string {
	var ids []string
	for _, ad := range b.Ads {
		ids = append(ids, ad.CampaignID)
	}
	return strings.Join(ids, ",")
}

// TestSchedulesThroughHTTP: start and end are instants; hours are days of
// week and clock ranges in NAVAD_TIMEZONE, ranges past midnight included,
// with the engine's clock injected.
func TestSchedulesThroughHTTP(t *testing.T) {
	tokyo := mustLocation(t, "Asia/Tokyo")
	clock := newFakeClock(time.Date(2026, 11, 27, 12, 0, 0, 0, tokyo))
	e := newEnvWith(t, envConfig{loc: tokyo, clock: clock})
	w := e.world()
	e.must(204, e.do("DELETE", "/v1/campaigns/"+w.campA, w.advAKey, nil))
	e.must(204, e.do("DELETE", "/v1/campaigns/"+w.campB, w.advBKey, nil))
	create := func(name string, fields map[string]any) string {
		c := beerCampaign("")
		c["name"] = name
		for k, v := range fields {
			c[k] = v
		}
		id := e.must(201, e.do("POST", "/v1/campaigns", w.advBKey, c)).json(t)["id"].(string)
		return id
	}
	// An evening campaign for the last weekend of November: Friday and
	// Saturday 17:00 to 02:00 the next morning.
	evening := create("evening", map[string]any{
		"start": "2026-11-27T17:00:00+09:00", "end": "2026-11-30T23:59:59+09:00",
		"hours": []map[string]any{{"days": []string{"fri", "sat"}, "from": "17:00", "to": "02:00"}},
	})
	// A campaign that ends on Monday night, at any hour until then.
	ending := create("ending", map[string]any{"end": "2026-11-30T23:59:59+09:00"})
	// Sunday night into Monday morning wraps around the week; 24:00 ends
	// Sunday.
	sunday := create("sunday", map[string]any{"hours": []map[string]any{
		{"days": []string{"sun"}, "from": "22:00", "to": "03:00"},
		{"days": []string{"sat"}, "from": "20:00", "to": "24:00"},
	}})
	at := func(y int, mo time.Month, d, h, mi, s int) time.Time { return time.Date(y, mo, d, h, mi, s, 0, tokyo) }
	tests := []struct {
		name string
		at   time.Time
		want []string
	}{
		{"friday 16:59, before the start", at(2026, 11, 27, 16, 59, 59), []string{ending}},
		{"friday 17:00, the start", at(2026, 11, 27, 17, 0, 0), []string{evening, ending}},
		{"saturday 01:59, past midnight", at(2026, 11, 28, 1, 59, 0), []string{evening, ending}},
		{"saturday 02:00, the range ends", at(2026, 11, 28, 2, 0, 0), []string{ending}},
		{"saturday 12:00", at(2026, 11, 28, 12, 0, 0), []string{ending}},
		{"saturday 20:00", at(2026, 11, 28, 20, 0, 0), []string{evening, ending, sunday}},
		{"saturday 23:59", at(2026, 11, 28, 23, 59, 0), []string{evening, ending, sunday}},
		{"sunday 00:00, 24:00 ended saturday", at(2026, 11, 29, 0, 0, 0), []string{evening, ending}},
		{"sunday 01:30, saturday's evening", at(2026, 11, 29, 1, 30, 0), []string{evening, ending}},
		{"sunday 17:00, not an evening day", at(2026, 11, 29, 17, 0, 0), []string{ending}},
		{"sunday 22:00", at(2026, 11, 29, 22, 0, 0), []string{ending, sunday}},
		{"monday 02:59, sunday night wraps", at(2026, 11, 30, 2, 59, 0), []string{ending, sunday}},
		{"monday 03:00", at(2026, 11, 30, 3, 0, 0), []string{ending}},
		{"monday 23:59:59, the last second", at(2026, 11, 30, 23, 59, 59), []string{ending}},
		{"tuesday 00:00, over", at(2026, 12, 1, 0, 0, 0), nil},
		{"the next friday 18:00, after the end", at(2026, 12, 4, 18, 0, 0), nil},
	}
	for _, tt := range tests {
		clock.Set(tt.at)
		v := shinjuku("居酒屋")
		v.Set("n", "10")
		got := servedCampaigns(e.decide(w.publisherKey, v))
		// Equal priority and bid, equally near: ordered by campaign ID.
		want := sortedJoin(tt.want)
		if got != want {
			t.Errorf("%s: served [%s], want [%s]", tt.name, got, want)
		}
	}
}

func sortedJoin(ids []string) string {
	out := append([]string(nil), ids...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return strings.Join(out, ",")
}

// TestHoursFollowTheBusinessTimeZone: the same campaign at the same instant
// is in its hours on a server whose NAVAD_TIMEZONE is Los Angeles and out of
// them on one in Tokyo.
func TestHoursFollowTheBusinessTimeZone(t *testing.T) {
	instant := time.Date(2026, 11, 28, 1, 30, 0, 0, time.UTC) // Fri 17:30 in LA, Sat 10:30 in Tokyo
	for _, tt := range []struct {
		zone string
		want int
	}{
		{"America/Los_Angeles", 1},
		{"Asia/Tokyo", 0},
	} {
		t.Run(tt.zone, func(t *testing.T) {
			e := newEnvWith(t, envConfig{loc: mustLocation(t, tt.zone), clock: newFakeClock(instant)})
			w := e.world()
			e.must(204, e.do("DELETE", "/v1/campaigns/"+w.campA, w.advAKey, nil))
			e.must(200, e.do("PATCH", "/v1/campaigns/"+w.campB, w.advBKey, map[string]any{
				"hours": []map[string]any{{"days": []string{"fri"}, "from": "17:00", "to": "23:00"}},
			}))
			if got := len(e.decide(w.publisherKey, shinjuku("居酒屋")).Ads); got != tt.want {
				t.Fatalf("%d ads, want %d", got, tt.want)
			}
		})
	}
}

// TestPublisherAndModeTargeting: a campaign's publishers and modes are
// honoured, and in car mode the route is a drive.
func TestPublisherAndModeTargeting(t *testing.T) {
	e := newEnvWith(t, envConfig{})
	w := e.world()
	_, otherPubKey := e.account(adminKey, map[string]any{"type": "publisher", "name": "Other Navi"})
	e.must(200, e.do("PATCH", "/v1/campaigns/"+w.campA, w.advAKey, map[string]any{"publishers": []string{w.publisher}}))
	e.must(200, e.do("PATCH", "/v1/campaigns/"+w.campB, w.advBKey, map[string]any{"modes": []string{"car"}}))
	tests := []struct {
		name, key, mode string
		want            []string
	}{
		{"targeted publisher walking", w.publisherKey, "walk", []string{w.campA}},
		{"targeted publisher driving", w.publisherKey, "car", []string{w.campA, w.campB}},
		{"other publisher walking", otherPubKey, "walk", nil},
		{"other publisher driving", otherPubKey, "car", []string{w.campB}},
		{"admin (not a publisher) walking", adminKey, "walk", nil},
	}
	for _, tt := range tests {
		v := shinjuku("居酒屋")
		v.Set("mode", tt.mode)
		if got, want := servedCampaigns(e.decide(tt.key, v)), sortedJoin(tt.want); got != want {
			t.Errorf("%s: served [%s], want [%s]", tt.name, got, want)
		}
	}
	// Back to every publisher: [] means all.
	e.must(200, e.do("PATCH", "/v1/campaigns/"+w.campA, w.advAKey, map[string]any{"publishers": []string{}}))
	if got := servedCampaigns(e.decide(otherPubKey, shinjuku("居酒屋"))); got != w.campA {
		t.Errorf("publishers []: other publisher served [%s], want [%s]", got, w.campA)
	}

	// The route: the same store, walked and driven.
	straight := geo.DistanceM(35.6909, 139.7003, 35.6905, 139.7005)
	for _, tt := range []struct {
		mode   string
		est    geo.Estimate
		travel string
	}{
		{"walk", geo.Walk(straight), "travelmode=walking"},
		{"car", geo.Drive(straight), "travelmode=driving"},
	} {
		v := shinjuku("居酒屋")
		v.Set("mode", tt.mode)
		ads := e.decide(otherPubKey, v).Ads
		if len(ads) == 0 {
			t.Fatalf("%s: no ad", tt.mode)
		}
		r := ads[0].Route
		if r.Mode != tt.mode || r.RouteDistanceM != tt.est.DistanceM || r.ETASeconds != tt.est.ETASeconds ||
			!strings.Contains(r.Links.GoogleMaps, tt.travel) || r.DistanceM != int(straight+0.5) {
			t.Errorf("%s route %+v, want %+v and %s", tt.mode, r, tt.est, tt.travel)
		}
	}
	if geo.Drive(straight).DistanceM <= geo.Walk(straight).DistanceM {
		t.Errorf("a drive should follow a longer route than a walk")
	}
}

// TestOpeningHoursThroughHTTP: stores uploaded with opening hours in JSON
// and GeoJSON (and without, in CSV); a closed store is never the target,
// the nearest open one is.
func TestOpeningHoursThroughHTTP(t *testing.T) {
	tokyo := mustLocation(t, "Asia/Tokyo")
	clock := newFakeClock(time.Date(2026, 11, 30, 10, 0, 0, 0, tokyo))
	e := newEnvWith(t, envConfig{loc: tokyo, clock: clock})
	adv, key := e.account(adminKey, map[string]any{"type": "advertiser", "name": "Bar chain"})
	_, pubKey := e.account(adminKey, map[string]any{"type": "publisher", "name": "Navi"})
	// The fix is Shinjuku station; near is 50 m away, mid 300 m, far 600 m.
	e.must(200, e.do("PUT", "/v1/stores", key, `[{"id":"near","name":"夜の店","lat":35.6913,"lng":139.7003,"products":["beer"],
		"hours":[{"from":"17:00","to":"02:00"}]}]`))
	e.must(200, e.do("PUT", "/v1/stores", key, `{"type":"FeatureCollection","features":[
		{"type":"Feature","geometry":{"type":"Point","coordinates":[139.7003,35.6936]},
		 "properties":{"id":"mid","name":"昼の店","products":["beer"],
		 "hours":[{"days":["mon","tue","wed","thu","fri"],"from":"09:00","to":"18:00"}]}}]}`, "Content-Type", "application/geo+json"))
	e.must(200, e.do("PUT", "/v1/stores", key, "id,name,address,lat,lng,products\nfar,いつもの店,,35.6963,139.7003,beer\n", "Content-Type", "text/csv"))
	c := beerCampaign(adv)
	c["product_id"] = "beer"
	c["radius_m"] = 1000
	e.must(201, e.do("POST", "/v1/campaigns", key, c))

	// The stores read back with their hours.
	r := e.must(200, e.do("GET", "/v1/stores/mid", key, nil))
	if !strings.Contains(string(r.Body), `"from":"09:00"`) {
		t.Fatalf("mid's hours were not kept: %s", r.Body)
	}
	for _, tt := range []struct {
		name string
		at   time.Time
		want string
	}{
		{"monday 10:00: near is closed", time.Date(2026, 11, 30, 10, 0, 0, 0, tokyo), "mid"},
		{"monday 17:59: both open, near is nearer", time.Date(2026, 11, 30, 17, 59, 0, 0, tokyo), "near"},
		{"monday 16:59: only mid", time.Date(2026, 11, 30, 16, 59, 0, 0, tokyo), "mid"},
		{"tuesday 01:59: near, past midnight", time.Date(2026, 12, 1, 1, 59, 0, 0, tokyo), "near"},
		{"tuesday 02:00: near closed, mid not yet open", time.Date(2026, 12, 1, 2, 0, 0, 0, tokyo), "far"},
		{"saturday 12:00: mid is closed at weekends", time.Date(2026, 12, 5, 12, 0, 0, 0, tokyo), "far"},
	} {
		clock.Set(tt.at)
		ads := e.decide(pubKey, shinjuku("居酒屋")).Ads
		got := ""
		if len(ads) > 0 {
			got = ads[0].Store.ID
		}
		if got != tt.want {
			t.Errorf("%s: target %q, want %q", tt.name, got, tt.want)
		}
	}
	// Closed and out of stock together: nothing.
	clock.Set(time.Date(2026, 12, 5, 12, 0, 0, 0, tokyo))
	e.must(200, e.do("PUT", "/v1/inventory", key, []map[string]any{{"store_id": "far", "product_id": "beer", "in_stock": false}}))
	if ads := e.decide(pubKey, shinjuku("居酒屋")).Ads; len(ads) != 0 {
		t.Errorf("saturday noon with far out of stock: %d ads, want none", len(ads))
	}
}
