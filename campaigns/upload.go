package campaigns

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// UploadFormat is the encoding of a bulk store list.
type UploadFormat string

// Store list formats.
const (
	JSONArray UploadFormat = "json"
	CSV       UploadFormat = "csv"
	GeoJSON   UploadFormat = "geojson"
)

// Upload is a parsed store list: the stores and, for each, the row number a
// person would use to find it in the file (a spreadsheet's line number for
// CSV, with the header as row 1; the element's position from 1 for JSON and
// GeoJSON).
type Upload struct {
	Stores []Store
	Rows   []int
	// IgnoredProperties are the GeoJSON property names navad does not
	// read (an OSM file's amenity, brand…; opening_hours where a feature
	// has hours, or where it cannot be read), each once, sorted, at most
	// maxIgnored: the answer lists them, so that a misspelt or foreign one
	// does not pass unseen.
	IgnoredProperties []string
	// OpeningHoursUnread are the rows (at most maxIgnored, the first) of a
	// GeoJSON upload whose OSM opening_hours navad could not read (see
	// hoursFromOSM) and that give no hours of their own: those stores are
	// always open.
	OpeningHoursUnread []int
}

// ReadStores parses a store list. Every row that cannot be read is reported
// in one Invalid *Error with its row number; so is a list longer than
// maxRows. Rows that parse are not yet validated: see CheckStores.
func ReadStores(r io.Reader, format UploadFormat, maxRows int) (*Upload, error) {
	switch format {
	case JSONArray:
		return readStoresJSON(r, maxRows)
	case CSV:
		return readStoresCSV(r, maxRows)
	case GeoJSON:
		return readStoresGeoJSON(r, maxRows)
	}
	return nil, Errorf(Invalid, "unknown store list format %q", format)
}

// storeRow is a store as a JSON upload writes it: Lat and Lng, shallower
// than the Store's own, take its lat and lng, so that a missing or null
// coordinate is told from 0.
type storeRow struct {
	Store
	Lat *float64 `json:"lat"`
	Lng *float64 `json:"lng"`
}

// readStoresJSON reads a JSON array of stores element by element, so that a
// badly typed element is reported with its position and the rest are still
// checked.
func readStoresJSON(r io.Reader, maxRows int) (*Upload, error) {
	kept := &keptReader{r: bufio.NewReaderSize(r, 64<<10)}
	dec := json.NewDecoder(kept)
	dec.DisallowUnknownFields()
	if err := expectDelim(dec, '['); err != nil {
		return nil, err
	}
	up := &Upload{}
	var p Problems
	for row := 1; dec.More(); row++ {
		if row > maxRows {
			return nil, Errorf(Invalid, "an upload holds at most %d stores", maxRows)
		}
		start := dec.InputOffset()
		var in storeRow
		err := dec.Decode(&in)
		if err != nil && !isTypeError(err) && !isUnknownField(err) {
			return nil, rowSyntaxError(row, err)
		}
		// The decoder replaces bytes that are not UTF-8 with U+FFFD: a
		// file saved as Shift_JIS was stored with every name garbled.
		if !kept.validUTF8(start, dec.InputOffset()) {
			p.AddRow(row, "is not valid UTF-8; save the file as UTF-8")
			continue
		}
		if err != nil {
			p.AddRow(row, "%s", ErrorMessage(JSONError(err)))
			continue
		}
		if in.Lat == nil || in.Lng == nil {
			// A store without a fix was placed at 0,0 in the Gulf of
			// Guinea, where no search finds it, and the upload said 200.
			p.AddRow(row, "lat and lng are required")
			continue
		}
		s := in.Store
		s.Lat, s.Lng = *in.Lat, *in.Lng
		up.Stores = append(up.Stores, s)
		up.Rows = append(up.Rows, row)
	}
	if _, err := dec.Token(); err != nil {
		return nil, JSONError(err)
	}
	if err := ExpectEnd(dec, "the JSON array"); err != nil {
		return nil, err
	}
	return finish(up, &p)
}

// ExpectEnd checks that nothing but white space follows the document dec
// has read, what (a body is one JSON document): an Invalid *Error
// otherwise, and one wrapping the reader's error when the rest cannot be
// read. dec.More is no test: it reports false before a stray "]" or "}",
// so a second document, or "]]" after an array, went unread.
func ExpectEnd(dec *json.Decoder, what string) error {
	_, err := dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil && isReadError(err):
		return readError(err)
	}
	return Errorf(Invalid, "unexpected data after %s", what)
}

// keptReader keeps what a JSON decoder reads from r until the decoder has
// consumed it, so that the raw bytes of each element can be checked for
// UTF-8. Decoding each element to a json.RawMessage and then again took
// twice the time and memory of one decode. Memory is about the decoder's
// read-ahead.
type keptReader struct {
	r    io.Reader
	buf  []byte
	base int64 // the stream offset of buf[0]
}

func (k *keptReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	k.buf = append(k.buf, p[:n]...)
	return n, err
}

// validUTF8 reports whether the bytes from stream offset start to end,
// which the decoder has read, are UTF-8, and forgets the bytes before end.
// start must not be before the end of the previous call.
func (k *keptReader) validUTF8(start, end int64) bool {
	ok := utf8.Valid(k.buf[start-k.base : end-k.base])
	// Compacting only once the consumed part is at least half of buf
	// moves each byte at most about once.
	if drop := int(end - k.base); drop >= len(k.buf)/2 {
		k.buf = k.buf[:copy(k.buf, k.buf[drop:])]
		k.base = end
	}
	return ok
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return JSONError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		kind := "an array"
		if want == '{' {
			kind = "an object"
		}
		return Errorf(Invalid, "the body must be %s", kind)
	}
	return nil
}

func isTypeError(err error) bool {
	var typ *json.UnmarshalTypeError
	return errors.As(err, &typ)
}

func isUnknownField(err error) bool {
	return err != nil && len(err.Error()) > 20 && err.Error()[:20] == "json: unknown field "
}

func rowSyntaxError(row int, err error) error {
	je := JSONError(err)
	e, ok := je.(*Error)
	if !ok {
		return je // the body could not be read: no row's fault
	}
	return &Error{Code: Invalid, Message: fmt.Sprintf("row %d: %s", row, e.Message),
		Details: []Detail{{Row: row, Message: e.Message}}}
}

// finish returns up, or, when rows could not be read (p), an error that lists
// them together with the problems of the rows that could, in row order: one
// answer names every bad row of the file.
func finish(up *Upload, p *Problems) (*Upload, error) {
	if p.Len() == 0 {
		return up, nil
	}
	var e *Error
	if errors.As(CheckStores(up.Stores, up.Rows), &e) {
		p.details = append(p.details, e.Details...)
		slices.SortStableFunc(p.details, func(a, b Detail) int { return a.Row - b.Row })
	}
	return nil, p.Err()
}
