package campaigns

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// checkUpload holds what ReadStores must satisfy whatever the bytes: an
// Upload whose rows match its stores, counted from 1 and increasing, at
// most maxRows of them; or an Invalid error (never internal) whose details
// name rows that exist. The same bytes always give the same answer.
func checkUpload(t *testing.T, data []byte, format UploadFormat) {
	t.Helper()
	const maxRows = 50
	up, err := ReadStores(bytes.NewReader(data), format, maxRows)
	up2, err2 := ReadStores(bytes.NewReader(data), format, maxRows)
	if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
		t.Fatalf("two reads disagree: %v / %v", err, err2)
	}
	if err != nil {
		var e *Error
		if ErrorCode(err) != Invalid || !asError(err, &e) {
			t.Fatalf("error %v (%T), want an Invalid *Error", err, err)
		}
		for _, d := range e.Details {
			if d.Row < 0 || !utf8.ValidString(d.Message) {
				t.Fatalf("detail %+v", d)
			}
		}
		return
	}
	if len(up.Stores) != len(up.Rows) || len(up.Stores) > maxRows {
		t.Fatalf("%d stores, %d rows (max %d)", len(up.Stores), len(up.Rows), maxRows)
	}
	first := 1
	if format == CSV {
		first = 2 // the header is row 1
	}
	if len(up.Rows) > 0 && up.Rows[0] < first || !slices.IsSorted(up.Rows) || len(slices.Compact(slices.Clone(up.Rows))) != len(up.Rows) {
		t.Fatalf("rows %v", up.Rows)
	}
	if !slices.EqualFunc(up.Stores, up2.Stores, func(a, b Store) bool { return a.ID == b.ID && a.Name == b.Name }) {
		t.Fatal("two reads gave different stores")
	}
	// Rows that parse may still be invalid, but checking them never panics.
	for i := range up.Stores {
		_ = up.Stores[i].RowProblem()
	}
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}

// FuzzReadStoresCSV: the CSV store list reader.
func FuzzReadStoresCSV(f *testing.F) {
	for _, s := range []string{
		"id,name,address,lat,lng,products\ns1,新宿店,東京都新宿区,35.6905,139.7005,beer-350|coffee\n",
		"\xef\xbb\xbfid,name,lat,lng,products\r\ns1,\"a, \"\"quoted\"\" name\",35,139,p\r\n\r\n",
		"id,name,lat,lng,products\ns1,n,NaN,Inf,p\ns2,n,1e400,-0,\ns3,n\n",
		"id,id,name\n",
		"lat,lng\n\"unterminated,1\n",
		"id,name,lat,lng,products\n=cmd|' /C calc'!A0,<script>,35,139,p\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkUpload(t, data, CSV) })
}

// FuzzReadStoresJSON: the JSON array store list reader.
func FuzzReadStoresJSON(f *testing.F) {
	for _, s := range []string{
		`[{"id":"s1","name":"新宿店","lat":35.6905,"lng":139.7005,"products":["beer-350"],"hours":[{"days":["fri"],"from":"17:00","to":"02:00"}]}]`,
		`[{"id":"s1","lat":"35"},{"id":"s2","unknown":1},{"id":"s3","lat":1e400}]`,
		`[{"id":"s1","id":"s2","name":"dup"}] trailing`,
		`[[[[[[[[[[]]]]]]]]]]`,
		`{"not":"an array"}`,
		"[{\"name\":\"\xff\"}]",
		`[`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkUpload(t, data, JSONArray) })
}

// FuzzReadStoresGeoJSON: the GeoJSON FeatureCollection store list reader.
func FuzzReadStoresGeoJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"FeatureCollection","features":[{"type":"Feature","id":7,"geometry":{"type":"Point","coordinates":[139.7005,35.6905]},"properties":{"name":"新宿店","products":"beer|coffee"}}]}`,
		`{"type":"FeatureCollection","bbox":[0,0,1,1],"features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0]]]}},{"type":"Feature","geometry":null},{"type":"Feature","geometry":{"type":"Point","coordinates":[1]}}]}`,
		`{"features":[],"type":"FeatureCollection","type":"Other"}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","id":{"x":1},"geometry":{"type":"Point","coordinates":[1e308,-1e308,0]},"properties":{"id":5,"hours":"always"}}]}`,
		`{"type":"FeatureCollection","features":{}}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkUpload(t, data, GeoJSON) })
}

// TestReadStoresStopsAtReadError: a reader that fails mid-list (a size
// limit, a dropped connection) ends the read at once with an error; the
// CSV reader used to loop to the row limit collecting bogus row errors.
func TestReadStoresStopsAtReadError(t *testing.T) {
	boom := errors.New("connection reset")
	heads := map[UploadFormat]string{
		CSV:       "id,name,lat,lng,products\ns1,店,35.69,139.70,p\ns2,店,35.6",
		JSONArray: `[{"id":"s1","name":"店","lat":35.69,"lng":139.70,"products":["p"]},{"id":"s2","na`,
		GeoJSON:   `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[139.7,`,
	}
	for format, head := range heads {
		up, err := ReadStores(io.MultiReader(strings.NewReader(head), iotest.ErrReader(boom)), format, 200_000)
		if err == nil || up != nil {
			t.Fatalf("%s: %v, %v; want an error", format, up, err)
		}
		var e *Error
		if asError(err, &e) && len(e.Details) > 1 {
			t.Fatalf("%s: %d row errors for one failed read", format, len(e.Details))
		}
		if format == CSV && !errors.Is(err, boom) {
			t.Fatalf("CSV: %v, want the reader's error", err)
		}
	}
}
