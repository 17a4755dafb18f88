package httpapi_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/navad/navad/internal/catalog"
)

// propagationBound is the promise: a change is reflected in
// decisions on the same server within one second of the request that makes
// it. Writes apply to the serving index before they are acknowledged, so
// the measured times are those of the write itself.
const propagationBound = time.Second * raceSlowdown

// readers runs decisions in the background until stop, recording the
// slowest, to show that no reader waits for a writer.
type readers struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	slowest time.Duration
	n       int
}

// startReaders decides continuously on one goroutine, pausing 100 µs
// between decisions so as not to starve the writer of a 2-core machine.
func startReaders(e *opsEnv, key string) *readers {
	rd := &readers{stop: make(chan struct{})}
	path := "/v1/ads?" + shinjuku("居酒屋").Encode()
	for range 1 {
		rd.wg.Add(1)
		go func() {
			defer rd.wg.Done()
			for {
				select {
				case <-rd.stop:
					return
				case <-time.After(100 * time.Microsecond):
				}
				start := time.Now()
				r := e.do("GET", path, key, nil)
				took := time.Since(start)
				if r.Status != 200 {
					e.t.Errorf("decision during writes: %d %s", r.Status, r.Body)
					return
				}
				rd.mu.Lock()
				rd.slowest = max(rd.slowest, took)
				rd.n++
				rd.mu.Unlock()
			}
		}()
	}
	return rd
}

func (rd *readers) finish() (time.Duration, int) {
	close(rd.stop)
	rd.wg.Wait()
	return rd.slowest, rd.n
}

// until measures how long after a write begins decisions show its effect:
// it runs write, then decides until seen reports true, and fails the test
// past propagationBound.
func (e *opsEnv) until(t *testing.T, name, pubKey string, write func(), seen func(adsBody) bool) time.Duration {
	t.Helper()
	v := shinjuku("居酒屋")
	v.Set("n", "10")
	start := time.Now()
	write()
	acked := time.Since(start)
	for {
		if seen(e.decide(pubKey, v)) {
			took := time.Since(start)
			t.Logf("%-28s acknowledged after %8v, reflected after %8v", name, acked.Round(time.Microsecond), took.Round(time.Microsecond))
			if took > propagationBound {
				t.Errorf("%s: reflected after %v, over %v", name, took, propagationBound)
			}
			return took
		}
		if time.Since(start) > propagationBound {
			t.Fatalf("%s: not reflected in decisions within %v", name, propagationBound)
		}
		time.Sleep(time.Millisecond)
	}
}

func has(id string) func(adsBody) bool {
	return func(b adsBody) bool { return slices.Contains(strings.Split(servedCampaigns(b), ","), id) }
}

func hasNot(id string) func(adsBody) bool {
	return func(b adsBody) bool { return !has(id)(b) }
}

// TestLifecycleReachesDecisionsWithinASecond: PUT, PATCH, pause, resume,
// DELETE and create, each reflected in decisions within one second while
// decisions run alongside, none of which waits for a writer.
func TestLifecycleReachesDecisionsWithinASecond(t *testing.T) {
	e := newEnvWith(t, envConfig{})
	w := e.world()
	rd := startReaders(e, w.publisherKey)
	var worst time.Duration
	step := func(name string, write func(), seen func(adsBody) bool) {
		worst = max(worst, e.until(t, name, w.publisherKey, write, seen))
	}
	campB := w.campB
	step("pause (POST)", func() { e.must(200, e.do("POST", "/v1/campaigns/"+campB+"/pause", w.advBKey, nil)) }, hasNot(campB))
	step("resume (POST)", func() { e.must(200, e.do("POST", "/v1/campaigns/"+campB+"/resume", w.advBKey, nil)) }, has(campB))
	step("pause (PATCH)", func() {
		e.must(200, e.do("PATCH", "/v1/campaigns/"+campB, w.advBKey, map[string]any{"status": "paused"}))
	}, hasNot(campB))
	step("resume (PATCH)", func() {
		e.must(200, e.do("PATCH", "/v1/campaigns/"+campB, w.advBKey, map[string]any{"status": "active"}))
	}, has(campB))
	step("PUT other keywords", func() {
		c := beerCampaign("")
		c["keywords"] = []map[string]any{{"text": "焼き鳥", "match": "broad"}}
		e.must(200, e.do("PUT", "/v1/campaigns/"+campB, w.advBKey, c))
	}, hasNot(campB))
	step("PUT the keywords back", func() { e.must(200, e.do("PUT", "/v1/campaigns/"+campB, w.advBKey, beerCampaign(""))) }, has(campB))
	step("PATCH another product", func() {
		e.must(200, e.do("PATCH", "/v1/campaigns/"+campB, w.advBKey, map[string]any{"product_id": "wine-750"}))
	}, hasNot(campB)) // no store carries it
	step("PATCH the product back", func() {
		e.must(200, e.do("PATCH", "/v1/campaigns/"+campB, w.advBKey, map[string]any{"product_id": "beer-350"}))
	}, has(campB))
	step("DELETE", func() { e.must(204, e.do("DELETE", "/v1/campaigns/"+campB, w.advBKey, nil)) }, hasNot(campB))
	var created string
	step("POST a new campaign", func() {
		created = e.must(201, e.do("POST", "/v1/campaigns", w.advBKey, beerCampaign(""))).json(t)["id"].(string)
	}, func(b adsBody) bool { return created != "" && has(created)(b) })
	slowest, n := rd.finish()
	t.Logf("slowest change %v; %d decisions alongside, the slowest %v", worst.Round(time.Microsecond), n, slowest.Round(time.Microsecond))
	if slowest > propagationBound {
		t.Fatalf("a decision took %v while campaigns changed: a reader waited", slowest)
	}
}

// TestStockReachesDecisionsWithinASecond: a POS batch of 10,000 rows is
// taken (10,001 is not); a store reported out of stock stops being the
// route target within one second, and returns when back in stock.
func TestStockReachesDecisionsWithinASecond(t *testing.T) {
	e := newEnvWith(t, envConfig{})
	w := e.world()
	// B's chain grows to 10,000 stores, all farther than shinjuku-1 and -2.
	var csv strings.Builder
	csv.WriteString("id,name,address,lat,lng,products\n")
	for i := range 9998 {
		fmt.Fprintf(&csv, "far-%d,遠い店 %d,,%.6f,%.6f,beer-350\n", i, i, 35.70+float64(i%100)*0.001, 139.71+float64(i/100)*0.001)
	}
	e.must(200, e.do("PUT", "/v1/stores", w.advBKey, csv.String(), "Content-Type", "text/csv"))
	target := func(b adsBody) string {
		for _, ad := range b.Ads {
			if ad.CampaignID == w.campB {
				return ad.Store.ID
			}
		}
		return ""
	}
	targetIs := func(id string) func(adsBody) bool { return func(b adsBody) bool { return target(b) == id } }
	batch := func(inStock func(i int) bool) []map[string]any {
		rows := make([]map[string]any, 0, 10_000)
		for _, id := range []string{"shinjuku-1", "shinjuku-2"} {
			rows = append(rows, map[string]any{"store_id": id, "product_id": "beer-350", "in_stock": inStock(-1)})
		}
		for i := range 9998 {
			rows = append(rows, map[string]any{"store_id": fmt.Sprintf("far-%d", i), "product_id": "beer-350", "in_stock": inStock(i)})
		}
		return rows
	}
	rd := startReaders(e, w.publisherKey)
	var worst time.Duration
	step := func(name string, write func(), seen func(adsBody) bool) {
		worst = max(worst, e.until(t, name, w.publisherKey, write, seen))
	}
	step("shinjuku-1 out of stock", func() {
		e.must(200, e.do("PUT", "/v1/inventory", w.advBKey, []map[string]any{{"store_id": "shinjuku-1", "product_id": "beer-350", "in_stock": false}}))
	}, targetIs("shinjuku-2"))
	step("shinjuku-1 back (quantity)", func() {
		e.must(200, e.do("PUT", "/v1/inventory", w.advBKey, []map[string]any{{"store_id": "shinjuku-1", "product_id": "beer-350", "quantity": 12}}))
	}, targetIs("shinjuku-1"))
	allOut, _ := json.Marshal(batch(func(int) bool { return false }))
	allBack, _ := json.Marshal(batch(func(int) bool { return true }))
	step("10,000 rows, all out", func() {
		r := e.must(200, e.do("PUT", "/v1/inventory", w.advBKey, allOut))
		if !strings.Contains(string(r.Body), `"updated":10000`) {
			t.Errorf("batch answer: %s", r.Body)
		}
	}, targetIs(""))
	step("10,000 rows, all back", func() {
		e.must(200, e.do("PUT", "/v1/inventory", w.advBKey, allBack))
	}, targetIs("shinjuku-1"))
	slowest, n := rd.finish()
	t.Logf("slowest change %v; %d decisions alongside, the slowest %v", worst.Round(time.Microsecond), n, slowest.Round(time.Microsecond))
	if slowest > propagationBound {
		t.Fatalf("a decision took %v while stock changed: a reader waited", slowest)
	}

	// 10,001 rows is one too many; bad rows are all listed, and nothing of
	// a rejected batch is applied.
	big := append(batch(func(int) bool { return false }), map[string]any{"store_id": "shinjuku-1", "product_id": "beer-350", "in_stock": false})
	r := e.do("PUT", "/v1/inventory", w.advBKey, big)
	if r.Status != 400 || !strings.Contains(string(r.Body), "10000") {
		t.Fatalf("10,001 rows: %d %s", r.Status, r.Body)
	}
	bad := []map[string]any{
		{"store_id": "shinjuku-1", "product_id": "beer-350", "in_stock": false},
		{"store_id": "shinjuku-1", "product_id": "beer-350"},
		{"store_id": "nope", "product_id": "beer-350", "in_stock": false},
		{"store_id": "shinjuku-2", "product_id": "", "in_stock": false},
	}
	r = e.do("PUT", "/v1/inventory", w.advBKey, bad)
	if rows, _ := r.rowErrors(t); r.Status != 400 || fmt.Sprint(rows) != "[2 4]" {
		t.Fatalf("bad rows: %d %v %s", r.Status, rows, r.Body)
	}
	r = e.do("PUT", "/v1/inventory", w.advBKey, []map[string]any{bad[0], bad[2]})
	if r.Status != 400 || !strings.Contains(string(r.Body), `"row":2`) || !strings.Contains(string(r.Body), "nope") {
		t.Fatalf("unknown store: %d %s", r.Status, r.Body)
	}
	// Neither batch was applied, not even its good first row: shinjuku-1
	// is still in stock and the target.
	if got := target(e.decide(w.publisherKey, shinjuku("居酒屋"))); got != "shinjuku-1" {
		t.Fatalf("after the rejected batches: target %q, want shinjuku-1", got)
	}
}

// TestStockBatchRows: an empty batch (a point-of-sale job with nothing to
// report) is a 200 that changes nothing; rows of the wrong shape are
// listed by their numbers, every one, as a store upload's are, and the
// batch changes nothing.
func TestStockBatchRows(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	target := func() string { return campaignBStore(t, e, w) }
	before := target()
	if before == "" {
		t.Fatal("campaign B is not served before the batches")
	}
	r := e.must(200, e.do("PUT", "/v1/inventory", w.advBKey, `[]`))
	if !strings.Contains(string(r.Body), `"updated":0`) {
		t.Fatalf("empty batch answered %s", r.Body)
	}
	out := `{"store_id":"` + before + `","product_id":"beer-350","in_stock":false}`
	r = e.must(400, e.do("PUT", "/v1/inventory", w.advBKey, `[`+out+`,
		{"store_id":"`+before+`","product_id":"beer-350","in_stock":"no"},
		{"store_id":"","product_id":"beer-350","in_stock":true},
		{"store_id":"`+before+`","product_id":"beer-350","quantity":1.5},
		{"store_id":"`+before+`","product_id":"beer-350","in_stock":false,"price":100}]`))
	if rows, _ := r.rowErrors(t); !slices.Equal(rows, []int{2, 3, 4, 5}) {
		t.Fatalf("bad rows listed %v, want [2 3 4 5]: %s", rows, r.Body)
	}
	e.must(400, e.do("PUT", "/v1/inventory", w.advBKey, `null`))
	if after := target(); after != before {
		t.Fatalf("campaign B's store %q after the refused batch, want %q: part of it was applied", after, before)
	}
}

// TestStockStaleRowsSkipped: a point-of-sale row with an as_of older than
// the last applied one for its store and product (a batch delivered late)
// is skipped and counted as stale, and decisions keep following the newer
// row; an as_of far ahead of the server's clock, or not a time, is a bad
// row, and the batch changes nothing.
func TestStockStaleRowsSkipped(t *testing.T) {
	e := newEnv(t)
	w := e.world()
	target := func() string { return campaignBStore(t, e, w) }
	first := target()
	if first == "" {
		t.Fatal("campaign B is not served before the batches")
	}
	now := time.Now()
	row := func(inStock bool, asOf any) map[string]any {
		return map[string]any{"store_id": first, "product_id": "beer-350", "in_stock": inStock, "as_of": asOf}
	}
	answer := func(r response) catalog.StockResult {
		var res catalog.StockResult
		if err := json.Unmarshal(r.Body, &res); err != nil {
			t.Fatalf("answer %s: %v", r.Body, err)
		}
		return res
	}
	// The newer batch (out, seen a minute ago) arrives first.
	r := e.must(200, e.do("PUT", "/v1/inventory", w.advBKey, []map[string]any{row(false, now.Add(-time.Minute).Format(time.RFC3339Nano))}))
	if got := answer(r); got != (catalog.StockResult{Updated: 1}) {
		t.Fatalf("newer batch: %+v", got)
	}
	if got := target(); got == first {
		t.Fatalf("target still %q after it was reported out of stock", got)
	}
	// The older one (in, seen ten minutes ago, in JST) arrives late.
	r = e.must(200, e.do("PUT", "/v1/inventory", w.advBKey, []map[string]any{row(true, now.Add(-10*time.Minute).In(time.FixedZone("JST", 9*3600)).Format(time.RFC3339))}))
	if got := answer(r); got != (catalog.StockResult{Stale: 1}) {
		t.Fatalf("late older batch: %+v, want 1 stale", got)
	}
	if got := target(); got == first {
		t.Fatalf("a stale row brought %q back", got)
	}
	// Bad times are bad rows, listed with the rest; nothing is applied.
	r = e.must(400, e.do("PUT", "/v1/inventory", w.advBKey, []map[string]any{
		row(true, now.Format(time.RFC3339)),
		row(true, now.Add(time.Hour).Format(time.RFC3339)),
		row(true, "yesterday"),
		row(true, "1999-12-31T23:59:59Z"),
	}))
	if rows, _ := r.rowErrors(t); !slices.Equal(rows, []int{2, 3, 4}) || !strings.Contains(string(r.Body), "ahead of the server's clock") {
		t.Fatalf("bad as_of rows listed %v, want [2 3 4]: %s", rows, r.Body)
	}
	if got := target(); got == first {
		t.Fatalf("a refused batch brought %q back", got)
	}
	// A newer row, and then one without a time (applied as it arrives).
	r = e.must(200, e.do("PUT", "/v1/inventory", w.advBKey, []map[string]any{row(true, now.Format(time.RFC3339Nano)), row(false, nil)}))
	if got := answer(r); got != (catalog.StockResult{Updated: 2}) {
		t.Fatalf("newer rows: %+v", got)
	}
	if got := target(); got == first {
		t.Fatalf("target %q after its last row said out of stock", got)
	}
	r = e.must(200, e.do("PUT", "/v1/inventory", w.advBKey, []map[string]any{row(true, now.Add(-time.Hour).Format(time.RFC3339))}))
	if got := answer(r); got != (catalog.StockResult{Updated: 1}) {
		t.Fatalf("a row after one without a time: %+v, want applied", got)
	}
	if got := target(); got != first {
		t.Fatalf("target %q, want %q back in stock", got, first)
	}
	metrics := string(e.must(200, e.do("GET", "/metrics", "", nil)).Body)
	for _, want := range []string{`navad_stock_rows_total{result="applied"} 4`, `navad_stock_rows_total{result="stale"} 1`} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// campaignBStore returns the store campaign B's ad leads to for 居酒屋 from
// Shinjuku, or "" when B is not served there.
func campaignBStore(t *testing.T, e *env, w world) string {
	t.Helper()
	var b adsBody
	if err := json.Unmarshal(e.must(200, e.do("GET", adsPath(shinjuku("居酒屋")), w.publisherKey, nil)).Body, &b); err != nil {
		t.Fatal(err)
	}
	for _, ad := range b.Ads {
		if ad.CampaignID == w.campB {
			return ad.Store.ID
		}
	}
	return ""
}
