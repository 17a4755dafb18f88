package httpapi

import (
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/navad/navad/geo"
	"github.com/navad/navad/internal/serving"
	"github.com/navad/navad/internal/tracking"
)

// The decision answer is written by hand rather than through encoding/json:
// it is the one response on every search, and reflection over its nested
// structs, with four long tracking URLs per ad escaped byte by byte, was half
// of the handler's time. The output is what encoding/json writes for the
// same values (HTML-safe escaping included); TestDecisionJSONMatchesEncodingJSON
// holds the two together.

// decisionScratch is a decision's buffers, taken from decisionBufs once a
// decision: the ads the engine found, the same as rendered, their
// tracking tokens, and the answer.
type decisionScratch struct {
	found        []serving.Ad
	ads          []adJSON
	json, tokens []byte
}

// decisionBufs holds decisionScratch between requests.
var decisionBufs = sync.Pool{New: func() any {
	return &decisionScratch{found: make([]serving.Ad, 0, maxN), ads: make([]adJSON, 0, maxN),
		json: make([]byte, 0, 8<<10), tokens: make([]byte, 0, 1<<10)}
}}

// release returns sb to decisionBufs, holding no campaign or store of the
// decision.
func (sb *decisionScratch) release() {
	clear(sb.found)
	clear(sb.ads)
	sb.found, sb.ads = sb.found[:0], sb.ads[:0]
	decisionBufs.Put(sb)
}

// appendDecision appends d as JSON.
func appendDecision(b []byte, d *decisionJSON) []byte {
	b = append(b, `{"request_id":`...)
	b = appendJSONString(b, d.RequestID)
	b = append(b, `,"ads":[`...)
	for i := range d.Ads {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAd(b, &d.Ads[i], d.linkBase)
	}
	return append(b, "]}"...)
}

// appendAd appends a; linkBase is what its tracking URLs begin with when it
// has a token.
func appendAd(b []byte, a *adJSON, linkBase string) []byte {
	b = append(b, `{"ad_id":`...)
	b = appendJSONString(b, a.AdID)
	b = append(b, `,"campaign_id":`...)
	b = appendJSONString(b, a.CampaignID)
	b = append(b, `,"label":`...)
	b = appendJSONString(b, a.Label)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, a.Title)
	b = append(b, `,"text":`...)
	b = appendJSONString(b, a.Text)
	b = append(b, `,"image_url":`...)
	b = appendJSONString(b, a.ImageURL)
	b = append(b, `,"landing_url":`...)
	b = appendJSONString(b, a.LandingURL)
	b = append(b, `,"store":{"id":`...)
	b = appendJSONString(b, a.Store.ID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, a.Store.Name)
	b = append(b, `,"address":`...)
	b = appendJSONString(b, a.Store.Address)
	b = append(b, `,"lat":`...)
	at := len(b)
	b = appendJSONFloat(b, a.Store.Lat)
	lat := b[at:]
	b = append(b, `,"lng":`...)
	at = len(b)
	b = appendJSONFloat(b, a.Store.Lng)
	lng := b[at:]
	r := &a.Route
	b = append(b, `},"route":{"mode":`...)
	b = appendJSONString(b, r.Mode)
	// The route's target is the store: its coordinates are copied rather
	// than formatted twice. (lat and lng stay valid if b has grown since:
	// they keep the old array, whose bytes do not change.)
	b = append(b, `,"target":{"lat":`...)
	if r.Target.Lat == a.Store.Lat {
		b = append(b, lat...)
	} else {
		b = appendJSONFloat(b, r.Target.Lat)
	}
	b = append(b, `,"lng":`...)
	if r.Target.Lng == a.Store.Lng {
		b = append(b, lng...)
	} else {
		b = appendJSONFloat(b, r.Target.Lng)
	}
	b = append(b, `},"distance_m":`...)
	b = strconv.AppendInt(b, int64(r.DistanceM), 10)
	b = append(b, `,"route_distance_m":`...)
	b = strconv.AppendInt(b, int64(r.RouteDistanceM), 10)
	b = append(b, `,"eta_s":`...)
	b = strconv.AppendInt(b, int64(r.ETASeconds), 10)
	b = appendLinks(b, r)
	b = append(b, "}}"...)
	if a.token != nil {
		// The URLs from their parts: the base escaped once a request, the
		// paths and the base64url token as they are (nothing to escape).
		for _, f := range [...]struct{ name, path string }{
			{`,"impression_url":"`, tracking.ImpressionPath}, {`,"click_url":"`, tracking.ClickPath},
			{`,"navigate_url":"`, tracking.NavigatePath}, {`,"visit_url":"`, tracking.VisitPath},
		} {
			b = append(b, f.name...)
			b = append(b, linkBase...)
			b = append(b, f.path...)
			b = append(b, a.token...)
			b = append(b, '"')
		}
		return append(b, '}')
	}
	for _, f := range [...]struct{ name, v string }{
		{`,"impression_url":`, a.ImpressionURL}, {`,"click_url":`, a.ClickURL},
		{`,"navigate_url":`, a.NavigateURL}, {`,"visit_url":`, a.VisitURL},
	} {
		if f.v != "" { // omitempty
			b = append(b, f.name...)
			b = appendJSONString(b, f.v)
		}
	}
	return append(b, '}')
}

// jsonEscaped returns s escaped as inside a JSON string, without the quotes.
func jsonEscaped(s string) string {
	b := appendJSONString(nil, s)
	return string(b[1 : len(b)-1])
}

// appendJSONFloat writes f as encoding/json does: the shortest
// representation, in 'e' form only for very large or small magnitudes.
// NaN and ±Inf, which JSON cannot hold, never reach here (coordinates are
// validated), and are written as 0.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		b = strconv.AppendFloat(b, f, 'e', -1, 64)
		// encoding/json writes e-07 as e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string, escaped as encoding/json
// escapes it (HTML-safe: <, > and & as \u003c…; U+2028 and U+2029; invalid
// UTF-8 as U+FFFD). Runs of bytes that need no escaping are copied at
// once, and found quickly: ASCII eight bytes at a time (plain8), and the
// three-byte sequences of kana and kanji without decoding them (plain3).
// BenchmarkAppendDecision: 6.6-7.8 µs → 3.8-3.9 µs for a three-ad answer.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				for i+8 <= len(s) && plain8(s[i:i+8]) {
					i += 8
				}
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		if plain3(s, i) {
			i += 3
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonPlain marks the ASCII bytes JSON writes as they are: not a control
// character, '"', '\\', or (HTML-safe) '<', '>' or '&'.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// plain8 reports whether the 8 bytes of s are all ones jsonPlain marks,
// tested a word at a time: URLs are long runs of them. In each byte lane
// the high bit of bad is set by a byte of 0x80 or above, by one below
// 0x20 (x minus 0x20 borrows), or by one equal to a byte to escape
// (zero after the XOR; the borrow trick may also mark a lane above a
// marked one, which only sends the bytes to the byte loop).
func plain8(s string) bool {
	_ = s[7]
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	const ones = 0x0101010101010101
	zero := func(y uint64) uint64 { return (y - ones) &^ y }
	bad := x | (x - 0x20*ones) | zero(x^'"'*ones) | zero(x^'\\'*ones) |
		zero(x^'<'*ones) | zero(x^'>'*ones) | zero(x^'&'*ones)
	return bad&(0x80*ones) == 0
}

// plain3 reports whether s[i:] starts with a valid three-byte UTF-8
// sequence that JSON writes as it is (not U+2028 or U+2029), as most kana
// and kanji are, checked without decoding the rune. Lead bytes E0 and ED,
// whose second byte has a narrower range, are left to the decoder.
func plain3(s string, i int) bool {
	if i+2 >= len(s) {
		return false
	}
	c, c1, c2 := s[i], s[i+1], s[i+2]
	if c < 0xE1 || c > 0xEF || c == 0xED || c1&0xC0 != 0x80 || c2&0xC0 != 0x80 {
		return false
	}
	return c != 0xE2 || c1 != 0x80 || (c2 != 0xA8 && c2 != 0xA9)
}

// appendLinks appends the "links" member of r: the two URLs given, or when
// they are to the route's target, the URLs made from it, as encoding/json
// would write the strings that geo.GeoURI and geo.GoogleMapsWalkURL (or
// DriveURL) return. Those hold no byte that JSON escapes but '&', which
// encoding/json writes as \u0026.
func appendLinks(b []byte, r *routeJSON) []byte {
	b = append(b, `,"links":{"geo":`...)
	if !r.Links.ofTarget {
		b = appendJSONString(b, r.Links.Geo)
		b = append(b, `,"google_maps":`...)
		return appendJSONString(b, r.Links.GoogleMaps)
	}
	// The target is a stored store's place, valid, so neither fails.
	b = append(b, '"')
	b, _ = geo.AppendGeoURI(b, r.Target.Lat, r.Target.Lng)
	b = append(b, `","google_maps":"`...)
	var buf [160]byte
	var u []byte
	if r.Links.drive {
		u, _ = geo.AppendGoogleMapsDriveURL(buf[:0], r.Target.Lat, r.Target.Lng)
	} else {
		u, _ = geo.AppendGoogleMapsWalkURL(buf[:0], r.Target.Lat, r.Target.Lng)
	}
	for _, c := range u {
		if c == '&' {
			b = append(b, `\u0026`...)
		} else {
			b = append(b, c)
		}
	}
	return append(b, '"')
}
