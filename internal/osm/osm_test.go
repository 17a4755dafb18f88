package osm

import "testing"

func TestPOIs(t *testing.T) {
	pois, err := POIs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pois) != 25763 {
		t.Fatalf("got %d points, want 25763", len(pois))
	}
	counts := map[string]int{}
	for _, p := range pois {
		counts[p.Category]++
		if p.Lat < 20 || p.Lat > 46 || p.Lng < 122 || p.Lng > 154 {
			t.Fatalf("%s lies outside Japan: %v,%v", p.ID, p.Lat, p.Lng)
		}
	}
	want := map[string]int{"convenience": 11608, "restaurant": 11064, "cafe": 3091}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s: got %d, want %d", k, counts[k], v)
		}
	}
}
