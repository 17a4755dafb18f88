package boltstore

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/record"
	"github.com/navad/navad/internal/storage/storagetest"
)

func TestStoreCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give campaigns.Store
	}{
		{"zero", campaigns.Store{ID: "s"}},
		{"every field", campaigns.Store{
			ID: "tokyo-001", Name: "居酒屋 いろは", Address: "東京都新宿区新宿3-1-1",
			Lat: 35.690921123456789, Lng: -139.7, Products: []string{"beer-350", "highball"},
			Hours: campaigns.Hours{{Days: []string{"fri", "sat"}, From: "17:00", To: "05:00"}, {From: "11:00", To: "14:00"}},
		}},
		{"long name", campaigns.Store{ID: "s", Name: string(make([]byte, 300)), Products: []string{"p"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.give.AdvertiserID = "adv"
			var d storeDecoder
			got, err := d.decode(joinKey("adv", tt.give.ID), record.AppendStore(nil, &tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.give) {
				t.Fatalf("got %#v, want %#v", *got, tt.give)
			}
		})
	}
}

func TestStoreCodecCorrupt(t *testing.T) {
	good := record.AppendStore(nil, &campaigns.Store{Name: "n", Address: "a", Products: []string{"p"}, Hours: campaigns.Hours{{From: "1", To: "2"}}})
	tests := []struct {
		name string
		give []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{9}, good[1:]...)},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"huge count", []byte{1 /* version */, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for i := range len(good) {
		tests = append(tests, struct {
			name string
			give []byte
		}{"truncated", good[:i]})
	}
	for _, tt := range tests {
		var d storeDecoder
		if _, err := d.decode([]byte("adv\x00s"), tt.give); err == nil {
			t.Errorf("%s %x: decoded without error", tt.name, tt.give)
		}
	}
	var d storeDecoder
	if _, err := d.decode([]byte("no separator"), good); !errors.Is(err, errCorrupt) {
		t.Errorf("key without separator: %v", err)
	}
}

// FuzzStoreCodec checks that decoding never panics on arbitrary bytes and
// that whatever decodes re-encodes to the same bytes.
func FuzzStoreCodec(f *testing.F) {
	for _, s := range storagetest.MakeStores(20) {
		f.Add(record.AppendStore(nil, &s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var d storeDecoder
		s, err := d.decode([]byte("adv\x00s"), v)
		if err != nil {
			return
		}
		if again := record.AppendStore(nil, s); string(again) != string(v) {
			// Only non-canonical varints may differ; they must decode alike.
			s2, err := d.decode([]byte("adv\x00s"), again)
			if err != nil || !reflect.DeepEqual(s, s2) {
				t.Fatalf("re-encoding changed the store: %v %#v %#v", err, s, s2)
			}
		}
	})
}

// BenchmarkStoreCodec compares the binary store encoding with encoding/json,
// the obvious alternative, on realistic stores.
func BenchmarkStoreCodec(b *testing.B) {
	stores := storagetest.MakeStores(1000)
	bin := make([][]byte, len(stores))
	js := make([][]byte, len(stores))
	var binSize, jsSize int
	for i := range stores {
		bin[i] = record.AppendStore(nil, &stores[i])
		noID := stores[i] // the ID is in the key in either design
		noID.ID = ""
		js[i], _ = json.Marshal(&noID)
		binSize += len(bin[i])
		jsSize += len(js[i])
	}
	key := []byte("adv\x00s0000001")
	b.Run("decode/binary", func(b *testing.B) {
		b.ReportAllocs()
		var d storeDecoder
		i := 0
		for b.Loop() {
			if _, err := d.decode(key, bin[i%len(bin)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(binSize)/float64(len(bin)), "bytes/store")
	})
	b.Run("decode/json", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var s campaigns.Store
			if err := json.Unmarshal(js[i%len(js)], &s); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(jsSize)/float64(len(js)), "bytes/store")
	})
	b.Run("encode/binary", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		i := 0
		for b.Loop() {
			buf = record.AppendStore(buf[:0], &stores[i%len(stores)])
			i++
		}
	})
	b.Run("encode/json", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := json.Marshal(&stores[i%len(stores)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
