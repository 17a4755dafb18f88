package campaigns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// JSONError turns an encoding/json decoding error into an Invalid *Error
// that names the offending field in the caller's terms, without echoing Go
// type names.
//
// An error that came from reading the body rather than from its content
// (the body was cut off, or is larger than its limit) is returned as an
// Invalid *Error that wraps it, so that the HTTP layer can still tell a
// body over its limit (413) by the error underneath.
func JSONError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	if isReadError(err) {
		return readError(err)
	}
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
			return Errorf(Invalid, "the body must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
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
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number"
	}
	return "a number"
}

// isReadError reports whether err came from the reader under a JSON decoder
// rather than from the JSON: encoding/json passes those through unchanged.
func isReadError(err error) bool {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		tm     *time.ParseError
	)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &syntax), errors.As(err, &typ), errors.As(err, &tm):
		return false
	}
	return !strings.HasPrefix(err.Error(), "json: ")
}

// readError is an Invalid *Error for a body that could not be read, wrapping
// the reader's error.
func readError(err error) error {
	return fmt.Errorf("%w: %w", Errorf(Invalid, "the body could not be read"), err)
}
