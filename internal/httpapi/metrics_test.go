package httpapi_test

import (
	"bytes"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics and returns every sample by series, written as
// name{label="value",...} with the labels sorted; a histogram contributes
// its name_count and name_sum.
func (e *env) scrape() map[string]float64 {
	e.t.Helper()
	r := e.must(200, e.do("GET", "/metrics", "", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		e.t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.Histogram.GetSampleCount())
				out[strings.Replace(key, name, name+"_sum", 1)] = m.Histogram.GetSampleSum()
			case m.Untyped != nil:
				out[key] = m.Untyped.GetValue()
			}
		}
	}
	return out
}

func TestMetricsCountTraffic(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	e.server.Metrics.SetTrackingBacklog(func() int { return 7 })
	e.server.Metrics.SetUserWindows(func() (int64, uint64) { return 3, 5 })
	before := e.scrape()

	// 3 decisions with ads, 2 with none, 1 bad request, 2 unmatched paths
	// holding an ID that must not become a label.
	for range 3 {
		e.must(200, e.do("GET", adsPath(shinjuku("居酒屋")), w.publisherKey, nil))
	}
	e.must(200, e.do("POST", "/v1/ads", w.publisherKey, map[string]any{"lat": 35.6909, "lng": 139.7003, "q": "歯医者", "n": 5}))
	e.must(200, e.do("GET", adsPath(shinjuku("歯医者")), w.publisherKey, nil))
	e.must(400, e.do("GET", adsPath(url.Values{"lat": {"NaN"}, "lng": {"139.7"}, "q": {"x"}}), w.publisherKey, nil))
	e.must(200, e.do("GET", "/v1/campaigns/"+w.campA, w.agencyKey, nil))
	e.must(404, e.do("GET", "/v1/no-such-thing/secret-id-123", w.agencyKey, nil))
	e.must(404, e.do("GET", "/v1/no-such-thing/secret-id-456", w.agencyKey, nil))
	e.must(201, e.do("POST", "/v1/campaigns", w.advBKey, beerCampaign("")))

	after := e.scrape()
	delta := func(series string) float64 { return after[series] - before[series] }
	tests := []struct {
		series string
		want   float64
	}{
		{`navad_http_requests_total{method="GET",route="/v1/ads",status="200"}`, 4},
		{`navad_http_requests_total{method="POST",route="/v1/ads",status="200"}`, 1},
		{`navad_http_requests_total{method="GET",route="/v1/ads",status="400"}`, 1},
		{`navad_http_requests_total{method="GET",route="/v1/campaigns/:id",status="200"}`, 1},
		{`navad_http_requests_total{method="GET",route="unmatched",status="404"}`, 2},
		{`navad_http_requests_total{method="POST",route="/v1/campaigns",status="201"}`, 1},
		// The scrape before this one is counted; this one is still running.
		{`navad_http_requests_total{method="GET",route="/metrics",status="200"}`, 1},
		{`navad_http_request_duration_seconds_count{method="GET",route="/v1/ads",status="200"}`, 4},
		{`navad_decisions_total{outcome="ads"}`, 3},
		{`navad_decisions_total{outcome="none"}`, 2},
		{`navad_decision_ads_requested_total`, 3*3 + 5 + 3},
		{`navad_decision_ads_served_total`, 3 * 2}, // both campaigns serve at Shinjuku
		{`navad_storage_operation_duration_seconds_count{op="create_campaign",result="ok"}`, 1},
	}
	for _, tt := range tests {
		if got := delta(tt.series); got != tt.want {
			t.Errorf("%s moved by %v, want %v", tt.series, got, tt.want)
		}
	}
	// The bad request is not a decision.
	if got := delta(`navad_decisions_total{outcome="error"}`); got != 0 {
		t.Errorf("error decisions moved by %v", got)
	}
	if got, want := after[`navad_decision_fill_ratio`], 3.0/5.0; got != want {
		t.Errorf("fill ratio %v, want %v", got, want)
	}
	snap := e.index.Snapshot()
	for series, want := range map[string]int{
		"navad_index_campaigns": snap.Campaigns(), "navad_index_stores": snap.Stores(), "navad_index_offers": snap.Offers(),
	} {
		if got := after[series]; got != float64(want) || want == 0 {
			t.Errorf("%s = %v, want %d (non-zero)", series, got, want)
		}
	}
	if got := after["navad_tracking_backlog_events"]; got != 7 {
		t.Errorf("tracking backlog %v, want 7 from the hook", got)
	}
	if got, n := after["navad_caps_user_windows"], after["navad_caps_unwindowed_ads_total"]; got != 3 || n != 5 {
		t.Errorf("user windows %v and unwindowed ads %v, want 3 and 5 from the hook", got, n)
	}
	for _, series := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes"} {
		if _, ok := after[series]; !ok {
			t.Errorf("%s is missing: runtime and process collectors", series)
		}
	}
	// Storage reads that answer not_found are labelled so.
	e.must(404, e.do("GET", "/v1/campaigns/cmp_none", w.advBKey, nil))
	if got := e.scrape()[`navad_storage_operation_duration_seconds_count{op="campaign",result="not_found"}`] - after[`navad_storage_operation_duration_seconds_count{op="campaign",result="not_found"}`]; got != 1 {
		t.Errorf("not_found storage reads moved by %v, want 1", got)
	}
	// No raw path reaches a label.
	body := string(e.must(200, e.do("GET", "/metrics", "", nil)).Body)
	for _, raw := range []string{"secret-id-123", w.campA, "35.6909"} {
		if strings.Contains(body, raw) {
			t.Errorf("/metrics holds the raw value %q", raw)
		}
	}
}

func TestMetricsRegistryIsPerServer(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	a.must(200, a.do("GET", "/healthz", "", nil))
	a.must(200, a.do("GET", "/healthz", "", nil))
	const series = `navad_http_requests_total{method="GET",route="/healthz",status="200"}`
	if got := a.scrape()[series]; got != 2 {
		t.Fatalf("server a counted %v health checks, want 2", got)
	}
	if got := b.scrape()[series]; got != 0 {
		t.Fatalf("server b counted %v health checks, want 0: registries are shared", got)
	}
}
