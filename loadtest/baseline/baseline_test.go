package baseline

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHandler(t *testing.T) {
	tests := []struct {
		give     string
		wantCode int
		wantBody string
	}{
		{"/v1/ads?lat=35.69&lng=139.70&q=%E5%B1%85%E9%85%92%E5%B1%8B", 200, `{"request_id":"baseline","ads":[]}`},
		{"/readyz", 200, `{"status":"ready"}`},
		{"/elsewhere", 404, "404 page not found"},
	}
	h := Handler()
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.give, nil))
		if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
			t.Errorf("GET %s = %d %q, want %d %q", tt.give, rec.Code, rec.Body, tt.wantCode, tt.wantBody)
		}
	}
}
