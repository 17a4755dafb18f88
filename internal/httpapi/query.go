package httpapi

import (
	"net/url"
	"strings"
)

// decisionFields are the query fields GET /v1/ads reads.
var decisionFields = [...]string{"lat", "lng", "q", "n", "mode", "acc", "uid"}

// decisionQuery holds the first value of each of decisionFields in a raw
// query string, and which of them were given more than once.
type decisionQuery struct {
	val   [len(decisionFields)]string
	have  [len(decisionFields)]bool
	twice [len(decisionFields)]bool
}

// readDecisionQuery reads a raw query as url.ParseQuery does (pairs split
// at '&'; a pair holding a ';' or a bad escape skipped; '+' read as a
// space; the first value of a field wins) but keeps only decisionFields'
// values: no url.Values map, no slice per field, and no string copied
// unless it was escaped. A field ParseQuery would give a second value is
// marked twice (parseDecisionQuery refuses it). It is on the path of every decision;
// FuzzDecisionQuery holds it to url.ParseQuery (checkQueryAsParseQuery).
func readDecisionQuery(raw string) decisionQuery {
	var q decisionQuery
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		i := decisionField(k)
		if i < 0 || q.twice[i] {
			continue
		}
		u, err := url.QueryUnescape(v)
		if err != nil {
			continue // as ParseQuery: a later pair may still give the field
		}
		if q.have[i] {
			q.twice[i] = true
			continue
		}
		q.val[i], q.have[i] = u, true
	}
	return q
}

// decisionField returns the index in decisionFields of a raw query key,
// or -1.
func decisionField(k string) int {
	if strings.ContainsAny(k, "%+") {
		u, err := url.QueryUnescape(k)
		if err != nil {
			return -1
		}
		k = u
	}
	for i, f := range decisionFields {
		if k == f {
			return i
		}
	}
	return -1
}

// get returns field k's value and whether the query has it.
func (q *decisionQuery) get(k string) (string, bool) {
	for i, f := range decisionFields {
		if k == f {
			return q.val[i], q.have[i]
		}
	}
	return "", false
}
