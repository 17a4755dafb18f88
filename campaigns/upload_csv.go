package campaigns

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// csvColumns are the columns a CSV store list may have; the first five
// without address are required.
var csvColumns = []string{"id", "name", "address", "lat", "lng", "products"}

// readStoresCSV reads a CSV store list with a header row, in UTF-8 with or
// without the byte-order mark Excel writes. Products are separated by "|".
// Row numbers are the record numbers a spreadsheet shows (the header is 1).
func readStoresCSV(r io.Reader, maxRows int) (*Upload, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // checked per row, so every bad row is reported
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errorf(Invalid, "the CSV is empty; the first row must be the header %s", strings.Join(csvColumns, ","))
		}
		return nil, csvError(1, err)
	}
	header = slices.Clone(header) // ReuseRecord: the next Read overwrites it
	col := make(map[string]int)
	var p Problems
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case !contains(csvColumns, h):
			p.AddRow(1, "unknown column %q; the columns are %s", h, strings.Join(csvColumns, ","))
		case col[h] != 0:
			p.AddRow(1, "column %q appears twice", h)
		default:
			col[h] = i + 1 // 0 means absent
		}
	}
	for _, need := range []string{"id", "name", "lat", "lng", "products"} {
		if col[need] == 0 {
			p.AddRow(1, "the header lacks the column %q", need)
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	width := len(header)
	up := &Upload{}
	rows := csvRows{row: 1, end: endLine(cr, header)}
	for n := 0; ; {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// Field counts are checked below, row by row; any other parse
			// error is malformed CSV, which ends the upload.
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, readError(err)
			}
			if !errors.Is(pe.Err, csv.ErrFieldCount) {
				return nil, csvError(rows.next(pe.StartLine, pe.StartLine), err)
			}
		}
		start, _ := cr.FieldPos(0)
		row := rows.next(start, endLine(cr, rec))
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line, as spreadsheets leave at the end
		}
		if n++; n > maxRows {
			return nil, Errorf(Invalid, "an upload holds at most %d stores", maxRows)
		}
		if len(rec) != width {
			p.AddRow(row, "has %d fields, the header has %d", len(rec), width)
			continue
		}
		field := func(name string) string {
			if i := col[name]; i > 0 {
				return strings.TrimSpace(rec[i-1])
			}
			return ""
		}
		s := Store{ID: field("id"), Name: field("name"), Address: field("address")}
		var bad []string
		var ok bool
		if s.Lat, ok = ParseDecimal(field("lat")); !ok {
			bad = append(bad, fmt.Sprintf("lat %q is not a number", field("lat")))
		}
		if s.Lng, ok = ParseDecimal(field("lng")); !ok {
			bad = append(bad, fmt.Sprintf("lng %q is not a number", field("lng")))
		}
		if prods := field("products"); prods != "" {
			for _, pr := range strings.Split(prods, "|") {
				s.Products = append(s.Products, strings.TrimSpace(pr))
			}
		}
		if len(bad) > 0 {
			p.AddRow(row, "%s", strings.Join(bad, "; "))
			continue
		}
		up.Stores = append(up.Stores, s)
		up.Rows = append(up.Rows, row)
	}
	return finish(up, &p)
}

// ParseDecimal parses a coordinate written as a plain decimal number: an
// optional sign, digits with an optional fraction, an optional exponent.
// strconv.ParseFloat alone also takes Go's hexadecimal floats ("0x1p5"),
// underscores between digits ("1_3_9.5"), "Inf" and "NaN", which no
// spreadsheet writes for a coordinate and JSON refuses too. Decisions'
// query fields (lat, lng, acc) are read with it as well.
func ParseDecimal(s string) (float64, bool) {
	i, digits := 0, 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := i
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		}
		if i == exp {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// csvRows numbers records as a spreadsheet shows them: encoding/csv skips
// empty lines, which are rows of the sheet, and a quoted field may span
// lines of one row.
type csvRows struct {
	row int // the last record's row
	end int // the line the last record ended on
}

// next returns the row of a record from line start to line end.
func (r *csvRows) next(start, end int) int {
	r.row += 1 + max(start-r.end-1, 0)
	r.end = end
	return r.row
}

// endLine returns the line rec, the record cr read last, ends on.
func endLine(cr *csv.Reader, rec []string) int {
	last := len(rec) - 1
	line, _ := cr.FieldPos(last)
	return line + strings.Count(rec[last], "\n")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func csvError(row int, err error) error {
	msg := err.Error()
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return readError(err)
	}
	msg = pe.Err.Error()
	return &Error{Code: Invalid, Message: fmt.Sprintf("row %d: malformed CSV: %s", row, msg),
		Details: []Detail{{Row: row, Message: "malformed CSV: " + msg}}}
}
