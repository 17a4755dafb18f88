package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value returns what a counter or a histogram's count holds.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if h := d.GetHistogram(); h != nil {
		return float64(h.GetSampleCount())
	}
	return d.GetCounter().GetValue()
}

// TestObserveRequestCountsBySeries: requests are counted and timed in the
// series of their own labels, whether the series is new or cached, and
// decisions in the series of their outcome.
func TestObserveRequestCountsBySeries(t *testing.T) {
	m := New()
	for range 3 {
		m.RequestStarted()
		m.ObserveRequest("/v1/ads", "GET", 200, time.Millisecond)
	}
	m.RequestStarted()
	m.ObserveRequest("/v1/ads", "GET", 400, time.Millisecond)
	m.RequestStarted()
	m.ObserveRequest("unmatched", "BREW", 404, time.Millisecond)
	for _, tt := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"/v1/ads", "GET", "200"}, 3},
		{[]string{"/v1/ads", "GET", "400"}, 1},
		{[]string{"unmatched", "other", "404"}, 1},
		{[]string{"/v1/ads", "POST", "200"}, 0},
	} {
		if got := value(t, m.requests.WithLabelValues(tt.labels...)); got != tt.want {
			t.Errorf("requests %v = %v, want %v", tt.labels, got, tt.want)
		}
		if got := value(t, m.latency.WithLabelValues(tt.labels...).(prometheus.Metric)); got != tt.want {
			t.Errorf("latency count %v = %v, want %v", tt.labels, got, tt.want)
		}
	}
	if got := m.InFlight(); got != 0 {
		t.Errorf("%v in flight after every request ended", got)
	}
	m.ObserveDecision(3, 2)
	m.ObserveDecision(3, 0)
	m.ObserveDecision(3, 0)
	m.ObserveDecisionError()
	for outcome, want := range map[string]float64{OutcomeAds: 1, OutcomeNone: 2, OutcomeError: 1} {
		if got := value(t, m.decisions.WithLabelValues(outcome)); got != want {
			t.Errorf("decisions %s = %v, want %v", outcome, got, want)
		}
	}
	m.ObserveStock(10, 0)
	m.ObserveStock(3, 2)
	for result, want := range map[string]float64{"applied": 13, "stale": 2} {
		if got := value(t, m.stockRows.WithLabelValues(result)); got != want {
			t.Errorf("stock rows %s = %v, want %v", result, got, want)
		}
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New()
	for b.Loop() {
		m.RequestStarted()
		m.ObserveRequest("/v1/ads", "GET", 200, 80*time.Microsecond)
	}
}

// TestCountersStartAtZero: the counters an operator alerts on by label are
// there from the start, at 0, not missing (a dashboard's "no data") until
// their first event.
func TestCountersStartAtZero(t *testing.T) {
	m := New()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"navad_stock_rows_total/applied": false, "navad_stock_rows_total/stale": false,
		"navad_decisions_total/" + OutcomeAds: false, "navad_decisions_total/" + OutcomeNone: false,
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				k := f.GetName() + "/" + l.GetValue()
				if _, ok := want[k]; ok && s.GetCounter().GetValue() == 0 {
					want[k] = true
				}
			}
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("%s: not exposed at 0 before its first event", k)
		}
	}
}
