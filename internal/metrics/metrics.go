// Package metrics is navad's Prometheus instrumentation: HTTP requests by
// route and status, decisions by outcome and the fill rate, the serving
// index's size, storage latency, the tracking-event backlog, and the Go
// runtime and process collectors.
//
// Every Metrics owns its registry (never the global default), so two servers
// in one process, or two tests, never share counts. docs/operations.md lists
// every series with what to alert on.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/navad/navad/internal/serving"
)

// Decision outcomes, the values of the outcome label of
// navad_decisions_total.
const (
	OutcomeAds   = "ads"   // the answer held at least one ad
	OutcomeNone  = "none"  // a valid request that nothing filled
	OutcomeError = "error" // the engine failed (deadline, storage)
)

// Metrics holds every series navad exports. Its methods are safe for
// concurrent use; the ones on the request path take no lock.
type Metrics struct {
	reg *prometheus.Registry

	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	decisions *prometheus.CounterVec
	adsWanted prometheus.Counter
	adsServed prometheus.Counter
	storage   *prometheus.HistogramVec

	// answered and filled back the fill-ratio gauge: decisions answered
	// and those that held an ad, since the process started.
	answered, filled atomic.Uint64

	// series caches the request series by their labels, and decidedNone,
	// decidedAds and decidedError are the decision outcomes' counters, so
	// that the request path hashes no label values (a Vec's lookup per
	// request and series). Routes, methods and statuses are bounded, so
	// series is too.
	series                                sync.Map // requestLabels → *requestSeries
	decidedNone, decidedAds, decidedError prometheus.Counter
	stockRows                             *prometheus.CounterVec

	index   atomic.Pointer[serving.Index]
	backlog atomic.Pointer[func() int]
	windows atomic.Pointer[func() (int64, uint64)]
	capErrs atomic.Pointer[func() uint64]
}

// Latency buckets: a decision is tens of microseconds inside navad, a store
// upload of 200,000 rows several seconds; 50 µs to 13 s in steps of ×4.
var (
	requestBuckets = prometheus.ExponentialBuckets(50e-6, 4, 10)
	storageBuckets = prometheus.ExponentialBuckets(50e-6, 4, 10)
)

// New returns a Metrics with its own registry, every navad series and the
// Go runtime and process collectors registered.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "navad_http_requests_total",
		Help: "HTTP requests answered, by route pattern (never the raw path), method and status.",
	}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "navad_http_request_duration_seconds",
		Help:    "Time from the first middleware to the last byte handed to the connection, by route pattern, method and status.",
		Buckets: requestBuckets,
	}, []string{"route", "method", "status"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "navad_http_requests_in_flight",
		Help: "Requests being handled now; graceful shutdown waits for them.",
	})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "navad_decisions_total",
		Help: "Ad decisions by outcome: ads (at least one ad), none (nothing filled), error (the engine failed).",
	}, []string{"outcome"})
	m.decidedNone = m.decisions.WithLabelValues(OutcomeNone)
	m.decidedAds = m.decisions.WithLabelValues(OutcomeAds)
	m.decidedError = m.decisions.WithLabelValues(OutcomeError)
	m.adsWanted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "navad_decision_ads_requested_total",
		Help: "Sum of n over answered decisions: the ad slots publishers asked for.",
	})
	m.adsServed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "navad_decision_ads_served_total",
		Help: "Ads returned by answered decisions.",
	})
	fill := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "navad_decision_fill_ratio",
		Help: "Share of answered decisions that held at least one ad, since the process started. For a window use rate(navad_decisions_total{outcome=\"ads\"}[5m]) / sum(rate(navad_decisions_total{outcome!=\"error\"}[5m])).",
	}, m.fillRatio)
	m.storage = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "navad_storage_operation_duration_seconds",
		Help:    "Latency of storage.Catalog operations by operation and result (ok, not_found, error...). Iterating operations include the caller's per-item work.",
		Buckets: storageBuckets,
	}, []string{"op", "result"})
	sizes := func(name, help string, size func(*serving.Snapshot) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			ix := m.index.Load()
			if ix == nil {
				return 0
			}
			return float64(size(ix.Snapshot()))
		})
	}
	backlog := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "navad_tracking_backlog_events",
		Help: "What tracking accepted and the events store does not hold yet: served ads counted in memory, plus events waiting in the local spool while Redis is unreachable; 0 until tracking is wired.",
	}, func() float64 {
		if fn := m.backlog.Load(); fn != nil {
			return float64((*fn)())
		}
		return 0
	})
	userWindows := func() (int64, uint64) {
		if fn := m.windows.Load(); fn != nil {
			return (*fn)()
		}
		return 0, 0
	}
	openWindows := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "navad_caps_user_windows",
		Help: "Open per-user frequency-cap windows on the embedded store, at most NAVAD_MAX_USER_WINDOWS; 0 on Redis, which keeps its own.",
	}, func() float64 { n, _ := userWindows(); return float64(n) })
	unwindowed := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "navad_caps_unwindowed_ads_total",
		Help: "Ads served to a user for whom no frequency-cap window could be opened, NAVAD_MAX_USER_WINDOWS being open: served as if without uid, their frequency caps did not count them. Raise the setting if this grows.",
	}, func() float64 { _, n := userWindows(); return float64(n) })
	capErrors := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "navad_caps_errors_total",
		Help: "Budget and frequency-cap reservations that failed, or were not tried while the caps' store was found unavailable; the outage policy decided those ads (a budgeted campaign's refused, a frequency-capped one's served uncapped). A rise means the store (Redis) is out of reach or failing.",
	}, func() float64 {
		if fn := m.capErrs.Load(); fn != nil {
			return float64((*fn)())
		}
		return 0
	})
	m.stockRows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "navad_stock_rows_total",
		Help: "Point-of-sale stock rows by result: applied, or stale (skipped: a row with a later as_of for their store and product was applied before).",
	}, []string{"result"})
	for _, r := range []string{"applied", "stale"} {
		m.stockRows.WithLabelValues(r) // 0 from the start, not missing until the first batch
	}
	m.reg.MustRegister(
		m.requests, m.latency, m.inFlight, m.decisions, m.adsWanted, m.adsServed, fill, m.storage, backlog, openWindows, unwindowed, capErrors, m.stockRows,
		sizes("navad_index_campaigns", "Active campaigns in the serving index.", (*serving.Snapshot).Campaigns),
		sizes("navad_index_stores", "Stores in the serving index.", (*serving.Snapshot).Stores),
		sizes("navad_index_offers", "(advertiser, product) store sets in the serving index.", (*serving.Snapshot).Offers),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry the series live in, for tests and for
// packages that add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// WatchIndex makes the navad_index_* gauges report ix's current snapshot.
// They read it at scrape time, so the decision path pays nothing.
func (m *Metrics) WatchIndex(ix *serving.Index) { m.index.Store(ix) }

// SetTrackingBacklog makes navad_tracking_backlog_events report fn(), called
// at scrape time: the hook for the events store, whose flush backlog it is.
// fn must be cheap and safe for concurrent use. nil reports 0 again.
func (m *Metrics) SetTrackingBacklog(fn func() int) {
	if fn == nil {
		m.backlog.Store(nil)
		return
	}
	m.backlog.Store(&fn)
}

// SetUserWindows makes navad_caps_user_windows and
// navad_caps_unwindowed_ads_total report fn(), called at scrape time: the
// open per-user windows of the embedded store's frequency caps, and the ads
// served without one because the table was full. fn must be safe for
// concurrent use. nil reports 0 again.
func (m *Metrics) SetUserWindows(fn func() (open int64, unwindowed uint64)) {
	if fn == nil {
		m.windows.Store(nil)
		return
	}
	m.windows.Store(&fn)
}

// RequestStarted counts a request in flight until its ObserveRequest.
func (m *Metrics) RequestStarted() { m.inFlight.Inc() }

// InFlight reports how many requests are being handled now.
func (m *Metrics) InFlight() int {
	var d dto.Metric
	_ = m.inFlight.Write(&d)
	return int(d.GetGauge().GetValue())
}

// ObserveRequest records one answered HTTP request, ending RequestStarted. route must be a route
// pattern (gin's FullPath) or a fixed word such as "unmatched", never a raw
// path, so that the number of series stays bounded.
func (m *Metrics) ObserveRequest(route, method string, status int, took time.Duration) {
	m.inFlight.Dec()
	key := requestLabels{route, knownMethod(method), statusLabel(status)}
	s, ok := m.series.Load(key)
	if !ok {
		labels := []string{key.route, key.method, key.status}
		s, _ = m.series.LoadOrStore(key, &requestSeries{m.requests.WithLabelValues(labels...), m.latency.WithLabelValues(labels...)})
	}
	rs := s.(*requestSeries)
	rs.count.Inc()
	rs.latency.Observe(took.Seconds())
}

// requestLabels are the labels of a request series.
type requestLabels struct{ route, method, status string }

// requestSeries are the two series of one requestLabels.
type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// ObserveDecision records one answered decision: wanted is the n asked for,
// served the number of ads returned.
func (m *Metrics) ObserveDecision(wanted, served int) {
	m.answered.Add(1)
	m.adsWanted.Add(float64(wanted))
	if served == 0 {
		m.decidedNone.Inc()
		return
	}
	m.filled.Add(1)
	m.adsServed.Add(float64(served))
	m.decidedAds.Inc()
}

// ObserveStock records a point-of-sale batch: rows applied and rows
// skipped as stale.
func (m *Metrics) ObserveStock(applied, stale int) {
	m.stockRows.WithLabelValues("applied").Add(float64(applied))
	m.stockRows.WithLabelValues("stale").Add(float64(stale))
}

// ObserveDecisionError records a decision the engine could not answer.
func (m *Metrics) ObserveDecisionError() {
	m.decidedError.Inc()
}

func (m *Metrics) fillRatio() float64 {
	n := m.answered.Load()
	if n == 0 {
		return 0
	}
	return float64(m.filled.Load()) / float64(n)
}

// observeStorage records one storage operation.
func (m *Metrics) observeStorage(op, result string, took time.Duration) {
	m.storage.WithLabelValues(op, result).Observe(took.Seconds())
}

// knownMethod bounds the method label: a client may send any token as a
// method, and each would otherwise become a series.
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// statusLabels holds the label of every valid status code, so that the
// request path does not format one per request.
var statusLabels = func() (s [600]string) {
	for i := 100; i < len(s); i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func statusLabel(code int) string {
	if code >= 100 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return "other"
}

// SetCapErrors makes navad_caps_errors_total report fn(), called at scrape
// time: the pacer's count of failed reservations. fn must be safe for
// concurrent use. nil reports 0 again.
func (m *Metrics) SetCapErrors(fn func() uint64) {
	if fn == nil {
		m.capErrs.Store(nil)
		return
	}
	m.capErrs.Store(&fn)
}
