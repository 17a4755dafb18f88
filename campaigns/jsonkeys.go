package campaigns

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckUniqueKeys returns an Invalid *Error when an object in the JSON
// document b names a member twice, names compared as Go's decoder matches
// them to fields: without regard to case, Unicode folding included
// ("status" and "Status", "advertiser_id" and "advertiſer_id"). The decoder
// would keep the last silently, so that {"status":"paused","Status":"active"}
// made an active campaign. Syntax errors are left to the decode that
// follows: CheckUniqueKeys returns nil on them.
func CheckUniqueKeys(b []byte) error {
	type frame struct {
		object    bool
		expectKey bool
		keys      map[string]string // folded name → the name as first written
		key       string            // the member being read, in an object
		path      string            // where the frame is, for the message
		index     int               // the next element's index, in an array
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*frame
	// value notes that a value ended in the innermost frame.
	value := func() {
		if n := len(stack); n > 0 {
			if f := stack[n-1]; f.object {
				f.expectKey = true
			} else {
				f.index++
			}
		}
	}
	// where returns the path of a value starting now in the innermost frame.
	where := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.object {
			return joinPath(f.path, f.key)
		}
		return fmt.Sprintf("%s[%d]", f.path, f.index)
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or a syntax error for the decode to report
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{object: true, expectKey: true, keys: map[string]string{}, path: where()})
			case '[':
				stack = append(stack, &frame{path: where()})
			default:
				stack = stack[:len(stack)-1]
				value()
			}
		case string:
			if top != nil && top.object && top.expectKey {
				folded := foldName(t)
				if first, ok := top.keys[folded]; ok {
					var p Problems
					if first == t {
						p.Add(joinPath(top.path, t), "appears twice in its object")
					} else {
						p.Add(joinPath(top.path, t), "names the same field as %q in its object (names are matched without regard to case)", first)
					}
					return p.Err()
				}
				top.keys[folded] = t
				top.expectKey = false
				top.key = t
				continue
			}
			value()
		default:
			value()
		}
	}
}

// joinPath appends a member name to a path of names.
func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// foldName folds a member name as encoding/json does to match it to a
// field: ASCII letters to upper case, other runes to the upper case of
// their lower case (so ſ, K and k fold as s, k and k do).
func foldName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
		default:
			r = unicode.ToUpper(unicode.ToLower(r))
		}
		b.WriteRune(r)
	}
	return b.String()
}
