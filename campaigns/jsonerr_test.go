package campaigns_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/navad/navad/campaigns"
)

// TestJSONErrorMessages: a JSON value of the wrong kind is named in plain
// words, for the body and for a field.
func TestJSONErrorMessages(t *testing.T) {
	var dst struct {
		N   int     `json:"n"`
		Lat float64 `json:"lat"`
		Q   string  `json:"q"`
	}
	for _, tt := range []struct{ body, want, field string }{
		{`[1]`, "the body must be an object, not array", ""},
		{`"x"`, "the body must be an object, not string", ""},
		{`{"n":1e2}`, "n must be a whole number, not number 1e2", "n"},
		{`{"n":1.5}`, "n must be a whole number, not number 1.5", "n"},
		{`{"lat":"35.6"}`, "lat must be a number, not string", "lat"},
		{`{"q":5}`, "q must be a string, not number", "q"},
		{``, "the body is empty; a JSON document is required", ""},
	} {
		err := campaigns.JSONError(json.NewDecoder(strings.NewReader(tt.body)).Decode(&dst))
		var e *campaigns.Error
		if !errors.As(err, &e) || e.Code != campaigns.Invalid || e.Message != tt.want {
			t.Errorf("%s: %v, want invalid_argument %q", tt.body, err, tt.want)
			continue
		}
		if tt.field != "" && (len(e.Details) != 1 || e.Details[0].Field != tt.field) {
			t.Errorf("%s: details %+v, want the field %s", tt.body, e.Details, tt.field)
		}
	}
}
