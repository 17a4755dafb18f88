package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkGetAds is GET /v1/ads through the gin engine and every
// middleware, in process, with a publisher's key: a search by Shinjuku
// station that two campaigns answer, and one that triggers nothing. The
// allocations are navad's and gin's; net/http's own (reading the request,
// the connection) come on top in a server.
func BenchmarkGetAds(b *testing.B) {
	te := newTrackedEnv(b)
	w := te.world()
	if ads := te.ads(w.publisherKey); len(ads) != 2 {
		b.Fatalf("%d ads, want 2", len(ads))
	}
	for _, bm := range []struct{ name, q string }{{"ads", "居酒屋"}, {"none", "銀行"}} {
		b.Run(bm.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", adsPath(shinjuku(bm.q)), nil)
			req.Header.Set("Authorization", "Bearer "+w.publisherKey)
			rec := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(rec.h)
				rec.status = 0
				te.handler.ServeHTTP(rec, req)
				if rec.status != http.StatusOK {
					b.Fatalf("status %d", rec.status)
				}
			}
		})
	}
}
