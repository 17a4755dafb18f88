package campaigns

import (
	"strings"
	"testing"
)

// TestCheckUniqueKeys: an object naming a member twice, by name or by
// case (as Go's decoder matches names to fields), at any depth, is
// refused with where it is; the same name in different objects, in
// strings or in values, and malformed JSON (left to the decoder) are not.
func TestCheckUniqueKeys(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // "" for nil
	}{
		{`{"a":1,"b":2}`, ""},
		{`{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, ""},
		{`{"a":"a","b":"a"}`, ""},
		{`[{"x":1},{"x":1}]`, ""},
		{`{"a":1,"a":2}`, `a appears twice`},
		{`{"status":"paused","Status":"active"}`, `Status names the same field as "status"`},
		{`{"advertiser_id":"a","advertiſer_id":"b"}`, `advertiſer_id names the same field as "advertiser_id"`},
		{`{"creative":{"title":"t","TITLE":"u"}}`, `creative.TITLE names the same field as "title"`},
		{`{"keywords":[{"text":"x"},{"text":"y","match":"broad","Match":"exact"}]}`, `keywords[1].Match names the same field`},
		{`[{"in_stock":true},{"store_id":"s","in_stock":true,"in_stock":false}]`, `[1].in_stock appears twice`},
		{`{"a":[1,{"b":1}],"c":{"d":{"e":1,"E":2}}}`, `c.d.E names the same field as "e"`},
		{`{"a":1,"b"`, ""}, // malformed: the decoder says so
		{`{"a":1,`, ""},
		{``, ""},
	} {
		err := CheckUniqueKeys([]byte(tt.in))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want nil", tt.in, err)
		case tt.want != "" && (err == nil || ErrorCode(err) != Invalid || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want Invalid saying %q", tt.in, err, tt.want)
		}
	}
}
