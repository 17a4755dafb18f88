package campaigns

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// JSONError turns an encoding/json decoding error into an Invalid *Error
// that names the offending field in the caller's terms, without echoing Go
// type names.
func JSONError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return Errorf(Invalid, "the body is empty; a JSON document is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(Invalid, "the JSON body ends early")
	case errors.As(err, &syntax):
		return Errorf(Invalid, "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return Errorf(Invalid, "the body must be a JSON %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return &Error{Code: Invalid, Message: field + " must be " + jsonKind(typ.Type.Kind().String()) + ", not " + typ.Value,
			Details: []Detail{{Field: field, Message: "must be " + jsonKind(typ.Type.Kind().String())}}}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return &Error{Code: Invalid, Message: "unknown field " + f, Details: []Detail{{Field: f, Message: "is not a known field"}}}
	}
	if strings.HasPrefix(msg, "parsing time") || strings.Contains(msg, "cannot parse") {
		return Errorf(Invalid, "a time must be RFC 3339, such as 2026-11-01T00:00:00+09:00")
	}
	return Errorf(Invalid, "malformed JSON: %s", strings.TrimPrefix(msg, "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a number"
}
