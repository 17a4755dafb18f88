package campaigns

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes. They are the codes of the public API's error body, so the HTTP
// layer maps each to a status in one place and clients see the same words.
const (
	Invalid          = "invalid_argument"  // 400
	Unauthenticated  = "unauthenticated"   // 401
	PermissionDenied = "permission_denied" // 403
	NotFound         = "not_found"         // 404
	Conflict         = "conflict"          // 409
	Gone             = "gone"              // 410
	TooLarge         = "payload_too_large" // 413
	NotAtStore       = "not_at_store"      // 422
	RateLimited      = "rate_limited"      // 429
	Unavailable      = "unavailable"       // 503
	Internal         = "internal"          // 500
)

// Detail is one problem inside an error: a field, or a row of an upload.
type Detail struct {
	Row     int    `json:"row,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Error is navad's error type: a code from the list above, a message meant
// for the caller, and optional details naming every bad field or row.
type Error struct {
	Code    string
	Message string
	Details []Detail
}

func (e *Error) Error() string {
	return e.Code + ": " + e.Message
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, Internal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return Internal
	}
}

// ErrorMessage returns the caller-facing message of err: the *Error's message,
// or a generic text for internal errors, whose details belong in the log.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Problems collects validation problems so that one error names every bad
// field at once. The zero value is ready to use.
type Problems struct {
	details []Detail
}

// Add records that field is bad.
func (p *Problems) Add(field, format string, args ...any) {
	p.details = append(p.details, Detail{Field: field, Message: fmt.Sprintf(format, args...)})
}

// AddRow records that a row of an upload is bad.
func (p *Problems) AddRow(row int, format string, args ...any) {
	p.details = append(p.details, Detail{Row: row, Message: fmt.Sprintf(format, args...)})
}

// Merge records every detail of other, with its field names prefixed.
func (p *Problems) Merge(prefix string, other *Problems) {
	for _, d := range other.details {
		if prefix != "" {
			d.Field = joinField(prefix, d.Field)
		}
		p.details = append(p.details, d)
	}
}

// Len reports how many problems were recorded.
func (p *Problems) Len() int { return len(p.details) }

// Err returns nil when nothing was recorded, and otherwise an Invalid *Error
// whose message lists the problems and whose details carry each one.
func (p *Problems) Err() error {
	if len(p.details) == 0 {
		return nil
	}
	var b strings.Builder
	const shown = 5
	for i, d := range p.details {
		if i == shown {
			fmt.Fprintf(&b, "; and %d more", len(p.details)-shown)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		switch {
		case d.Row > 0:
			fmt.Fprintf(&b, "row %d: %s", d.Row, d.Message)
		case d.Field != "":
			b.WriteString(d.Field + " " + d.Message)
		default:
			b.WriteString(d.Message)
		}
	}
	return &Error{Code: Invalid, Message: b.String(), Details: append([]Detail(nil), p.details...)}
}

func joinField(prefix, field string) string {
	if field == "" {
		return prefix
	}
	if strings.HasPrefix(field, "[") {
		return prefix + field
	}
	return prefix + "." + field
}
