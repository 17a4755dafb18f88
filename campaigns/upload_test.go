package campaigns_test

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/navad/navad/campaigns"
)

// errAfter is a reader that fails after n bytes, as a body cut off or over
// its limit does.
type errAfter struct {
	r   io.Reader
	n   int
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, e.err
	}
	if len(p) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}

var errTooLarge = errors.New("body too large")

func TestReadStoresKeepsReadErrors(t *testing.T) {
	csv := "id,name,lat,lng,products\n" + strings.Repeat("s1,n,35.69,139.70,p\n", 1000)
	json := "[" + strings.Repeat(`{"id":"s","name":"n","lat":35.69,"lng":139.70,"products":["p"]},`, 1000) + "]"
	geo := `{"type":"FeatureCollection","features":[` +
		strings.Repeat(`{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"s","name":"n","products":["p"]}},`, 1000) + "]}"
	for _, tt := range []struct {
		format campaigns.UploadFormat
		body   string
	}{{campaigns.CSV, csv}, {campaigns.JSONArray, json}, {campaigns.GeoJSON, geo}} {
		for _, cut := range []int{10, 500, 5000} {
			_, err := campaigns.ReadStores(&errAfter{strings.NewReader(tt.body), cut, errTooLarge}, tt.format, 100_000)
			if !errors.Is(err, errTooLarge) || campaigns.ErrorCode(err) != campaigns.Invalid {
				t.Errorf("%s cut at %d: %v; want an Invalid error wrapping the reader's", tt.format, cut, err)
			}
		}
	}
}

// TestReadStoresListsEveryBadRow: rows that cannot be read and rows that
// read but are invalid are reported together, in row order.
func TestReadStoresListsEveryBadRow(t *testing.T) {
	for _, tt := range []struct {
		format campaigns.UploadFormat
		body   string
		want   string
	}{
		{campaigns.JSONArray, `[
			{"id":"a","name":"n","lat":35.69,"lng":139.70,"products":[]},
			{"id":"b","name":"n","lat":"x","lng":139.70,"products":["p"]},
			{"id":"c","name":"n","lat":35.69,"lng":139.70,"products":["p"]},
			{"id":"a","name":"n","lat":95,"lng":139.70,"products":["p"]}]`, "[1 2 4]"},
		{campaigns.CSV, "id,name,lat,lng,products\na,n,35.69,139.70,\nb,n,x,139.70,p\nc,n,35.69,139.70,p\nd,n,35.69\n", "[2 3 5]"},
		// Rows as a spreadsheet shows them: an empty line is a row (the CSV
		// reader skips it), and a quoted field over two lines is one.
		{campaigns.CSV, "id,name,lat,lng,products\r\na,n,35.69,139.70,p\r\n\r\nb,n,x,139.70,p\r\n\"c\",\"two\r\nlines\",35.69,139.70,p\r\n\r\n\r\nd,n,95,139.70,p\r\n", "[4 5 8]"},
		{campaigns.GeoJSON, `{"type":"FeatureCollection","features":[
			{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"a","name":"","products":["p"]}},
			{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[139.70,35.69]]]},"properties":{"id":"b","name":"n","products":["p"]}},
			{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"c","name":"n","products":["p"]}}]}`, "[1 2]"},
	} {
		_, err := campaigns.ReadStores(strings.NewReader(tt.body), tt.format, 100)
		if err == nil {
			up, _ := campaigns.ReadStores(strings.NewReader(tt.body), tt.format, 100)
			err = campaigns.CheckStores(up.Stores, up.Rows)
		}
		var e *campaigns.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v", tt.format, err)
		}
		var rows []int
		for _, d := range e.Details {
			rows = append(rows, d.Row)
		}
		if fmt.Sprint(rows) != tt.want {
			t.Errorf("%s: rows %v, want %s (%v)", tt.format, rows, tt.want, err)
		}
	}
}

// FuzzReadStores: no input makes a reader panic, and what it accepts has a
// row number for every store, rising.
func FuzzReadStores(f *testing.F) {
	f.Add("csv", "id,name,lat,lng,products\ns,n,35.69,139.70,p|q\n")
	f.Add("csv", "\xEF\xBB\xBFid,name,address,lat,lng,products\r\n\"s,1\",n,\"a\"\"b\",1,2,p\r\n")
	f.Add("json", `[{"id":"s","name":"n","lat":35.69,"lng":139.70,"products":["p"],"hours":[{"from":"17:00","to":"02:00"}]}]`)
	f.Add("geojson", `{"type":"FeatureCollection","features":[{"type":"Feature","id":7,"geometry":{"type":"Point","coordinates":[139.7,35.6]},"properties":{"name":"n","products":"p|q"}}]}`)
	f.Fuzz(func(t *testing.T, format, body string) {
		up, err := campaigns.ReadStores(strings.NewReader(body), campaigns.UploadFormat(format), 50)
		if err != nil {
			if campaigns.ErrorCode(err) != campaigns.Invalid {
				t.Fatalf("error code %q: %v", campaigns.ErrorCode(err), err)
			}
			return
		}
		if len(up.Rows) != len(up.Stores) {
			t.Fatalf("%d rows for %d stores", len(up.Rows), len(up.Stores))
		}
		for i := 1; i < len(up.Rows); i++ {
			if up.Rows[i] <= up.Rows[i-1] {
				t.Fatalf("rows %v do not rise", up.Rows)
			}
		}
		_ = campaigns.CheckStores(up.Stores, up.Rows)
	})
}

// TestReadStoresRefusesTrailingData: nothing but white space may follow the
// JSON array or the FeatureCollection. A second document after the first
// was dropped unread, and "]]" after an array slipped past dec.More, with
// a 200 for what was read.
func TestReadStoresRefusesTrailingData(t *testing.T) {
	const (
		store = `{"id":"s1","name":"n","lat":35.69,"lng":139.70,"products":["p"]}`
		geo   = `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"g1","name":"n","products":["p"]}}]}`
	)
	tests := []struct {
		name   string
		format campaigns.UploadFormat
		give   string
		ok     bool
	}{
		{"array", campaigns.JSONArray, "[" + store + "]", true},
		{"array, white space after", campaigns.JSONArray, "[" + store + "] \r\n\t\n", true},
		{"array, ]] after", campaigns.JSONArray, "[" + store + "]]]", false},
		{"array, } after", campaigns.JSONArray, "[" + store + "]}", false},
		{"two arrays", campaigns.JSONArray, "[" + store + "][" + store + "]", false},
		{"array, text after", campaigns.JSONArray, "[" + store + "] this is not json", false},
		{"collection", campaigns.GeoJSON, geo, true},
		{"collection, white space after", campaigns.GeoJSON, geo + "\n\n ", true},
		{"two collections", campaigns.GeoJSON, geo + strings.Replace(geo, "g1", "g2", 1), false},
		{"collection, text after", campaigns.GeoJSON, geo + " this is not json", false},
		{"collection, } after", campaigns.GeoJSON, geo + "}", false},
		{"collection, ] after", campaigns.GeoJSON, geo + "]", false},
		{"collection, a number after", campaigns.GeoJSON, geo + " 1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := campaigns.ReadStores(strings.NewReader(tt.give), tt.format, 100)
			if tt.ok {
				if err != nil || len(up.Stores) != 1 {
					t.Fatalf("%v, %v; want one store", up, err)
				}
				return
			}
			if campaigns.ErrorCode(err) != campaigns.Invalid || !strings.Contains(err.Error(), "unexpected data after") {
				t.Fatalf("%v, %v; want an Invalid error about data after the document", up, err)
			}
		})
	}
}

// TestReadStoresRefusesInvalidUTF8: an element holding bytes that are not
// UTF-8 is a bad row, named by its position, among the other bad rows.
// encoding/json turned such bytes into U+FFFD, so a list saved as
// Shift_JIS was stored with every name garbled and the upload said 200.
func TestReadStoresRefusesInvalidUTF8(t *testing.T) {
	const sjis = "\x90\x56\x8f\x68\x93\x58" // 新宿店 in Shift_JIS
	jsonRow := func(id, name string) string {
		return `{"id":"` + id + `","name":"` + name + `","lat":35.69,"lng":139.70,"products":["p"]}`
	}
	geoRow := func(id, name string) string {
		return `{"type":"Feature","geometry":{"type":"Point","coordinates":[139.70,35.69]},"properties":{"id":"` + id + `","name":"` + name + `","products":["p"]}}`
	}
	// Many rows, every seventh not UTF-8, so that bad bytes fall on every
	// position of the readers' buffers.
	var manyJSON, manyGeo []string
	var manyWant []int
	for i := 1; i <= 3000; i++ {
		name := "新宿店"
		if i%7 == 0 {
			name = sjis
			manyWant = append(manyWant, i)
		}
		manyJSON = append(manyJSON, jsonRow(fmt.Sprint("s", i), name))
		manyGeo = append(manyGeo, geoRow(fmt.Sprint("s", i), name))
	}
	collection := func(rows ...string) string {
		return `{"type":"FeatureCollection","features":[` + strings.Join(rows, ",") + `]}`
	}
	tests := []struct {
		name   string
		format campaigns.UploadFormat
		give   string
		want   []int // bad rows; nil: a whole-body error
	}{
		{"JSON", campaigns.JSONArray, "[" + strings.Join([]string{
			jsonRow("a", "新宿店"),
			jsonRow("b", sjis),
			jsonRow("c", "ok"),
			`{"id":"d","name":"n","lat":"north","lng":139.70,"products":["p"]}`,
			`{"id":"e","name":"n","address":"` + "\xff" + `","lat":35.69,"lng":139.70,"products":["p"]}`,
			`{"id":"f","name":"n","lat":35.69,"lng":139.70,"products":["p"],"` + "\xfe" + `":1}`,
			jsonRow("g", "新宿店"),
		}, ",") + "]", []int{2, 4, 5, 6}},
		{"JSON, many rows", campaigns.JSONArray, "[" + strings.Join(manyJSON, ",\n") + "]", manyWant},
		{"GeoJSON", campaigns.GeoJSON, collection(geoRow("a", "新宿店"), geoRow("b", sjis), geoRow("c", "ok"), geoRow("d", "")), []int{2, 4}},
		{"GeoJSON, many rows", campaigns.GeoJSON, collection(manyGeo...), manyWant},
		{"GeoJSON, a member of the collection", campaigns.GeoJSON,
			`{"type":"FeatureCollection","name":"` + sjis + `","features":[` + geoRow("a", "ok") + `]}`, nil},
	}
	for _, tt := range tests {
		for _, rd := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{{"", func(r io.Reader) io.Reader { return r }}, {"one byte at a time", iotest.OneByteReader}} {
			t.Run(strings.TrimSpace(tt.name+" "+rd.name), func(t *testing.T) {
				_, err := campaigns.ReadStores(rd.wrap(strings.NewReader(tt.give)), tt.format, 10_000)
				var e *campaigns.Error
				if !errors.As(err, &e) || e.Code != campaigns.Invalid {
					t.Fatalf("%v; want an Invalid error", err)
				}
				if !strings.Contains(e.Message, "UTF-8") {
					t.Errorf("message %q does not say UTF-8", e.Message)
				}
				var rows []int
				for _, d := range e.Details {
					rows = append(rows, d.Row)
				}
				if fmt.Sprint(rows) != fmt.Sprint(tt.want) {
					t.Fatalf("rows %v, want %v", rows, tt.want)
				}
			})
		}
	}
}

// TestReadStoresCSVPlainDecimals: a CSV coordinate is a plain decimal
// number. strconv.ParseFloat also took hexadecimal floats and
// underscores, so "0x1p5" was stored as 32 and "1_3_9.5" as 139.5.
func TestReadStoresCSVPlainDecimals(t *testing.T) {
	tests := []struct {
		give string
		want float64 // NaN: a bad row
	}{
		{"35", 35}, {"35.6905", 35.6905}, {"-35.5", -35.5}, {"+35.5", 35.5}, {"35.", 35}, {".5", 0.5},
		{"-0", 0}, {"3.56905e1", 35.6905}, {"3569.05E-2", 35.6905}, {"0.356905e+2", 35.6905},
		{"0x1p5", math.NaN()}, {"0X20", math.NaN()}, {"1_3_9.5", math.NaN()}, {"3_5", math.NaN()},
		{"Inf", math.NaN()}, {"-Infinity", math.NaN()}, {"NaN", math.NaN()}, {"0b101", math.NaN()}, {"0o17", math.NaN()},
		{"1e", math.NaN()}, {"1e+", math.NaN()}, {".", math.NaN()}, {"-", math.NaN()}, {"", math.NaN()}, {"+-1", math.NaN()},
		{"35,5", math.NaN()}, {"35.5.5", math.NaN()}, {"３５", math.NaN()}, {"35 .5", math.NaN()}, {"1e400", math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			body := "id,name,lat,lng,products\ns1,n,\"" + tt.give + "\",139.70,p\ns2,n,35.69,\"" + tt.give + "\",p\n"
			up, err := campaigns.ReadStores(strings.NewReader(body), campaigns.CSV, 10)
			if math.IsNaN(tt.want) {
				var e *campaigns.Error
				if !errors.As(err, &e) || len(e.Details) != 2 || e.Details[0].Row != 2 || e.Details[1].Row != 3 ||
					!strings.Contains(e.Details[0].Message, "lat") || !strings.Contains(e.Details[1].Message, "lng") {
					t.Fatalf("%v, %v; want rows 2 and 3 bad", up, err)
				}
				return
			}
			if err != nil || up.Stores[0].Lat != tt.want || up.Stores[1].Lng != tt.want {
				t.Fatalf("%v, %v; want %v", up, err, tt.want)
			}
		})
	}
}
