package tracking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/navad/navad/internal/storage"
)

// Claims are what a tracking token says to count: which ad of which
// decision, for whom, where it leads, when it was served, and the coarse
// cell of the decision's fix (never the fix).
type Claims struct {
	AdID         string // "<request ID>.<n>"
	CampaignID   string
	AdvertiserID string
	PublisherID  string
	StoreID      string
	// StoreLat and StoreLng are the store's position when the ad was
	// served, kept to a micro-degree (about 0.1 m): what a visit is
	// measured against, so that a visit needs no lookup and a moved store
	// does not move past visits.
	StoreLat, StoreLng float64
	Cell               uint64    // H3 cell of the fix at geo.EventResolution
	Issued             time.Time // when the ad was served, to the second
}

// Token format, version 1. A token is the unpadded base64url encoding of
//
//	payload = version (1 byte, 1)
//	          issued  (4 bytes, big-endian Unix seconds)
//	          cell    (8 bytes, big-endian H3 index)
//	          store latitude, longitude (4 bytes each, big-endian int32 micro-degrees)
//	          ad ID, campaign, advertiser, publisher, store ID (each a uvarint length and the bytes)
//	mac     = the first 16 bytes of HMAC-SHA256(secret, payload)
//
// followed directly by mac. A 128-bit tag is far beyond guessing, and
// halves what the tag adds to every URL. The tag also identifies the token
// (storage.TokenID): equal payloads give equal tags, and any change to the
// payload gives a tag no one without the secret can compute.
const (
	tokenVersion = 1
	macLen       = 16
	fixedLen     = 1 + 4 + 8 + 4 + 4
	// maxIDLen bounds each string in a token: campaign, advertiser,
	// publisher and store IDs are at most 128 bytes (campaigns.MaxIDLen),
	// ad IDs are shorter.
	maxIDLen = 256
	// MaxTokenLen is the longest token Verify decodes; longer input is
	// rejected before any work. Unpadded base64 takes ⌈4n/3⌉ characters
	// for n bytes.
	MaxTokenLen = (4*(fixedLen+5*(2+maxIDLen)+macLen) + 2) / 3
)

// MinSecretLen is the shortest secret NewSigner accepts.
const MinSecretLen = 32

// ErrInvalidToken is returned by Verify for anything that is not a token
// this secret signed: malformed, truncated, altered or forged.
var ErrInvalidToken = errors.New("invalid tracking token")

var b64 = base64.RawURLEncoding.Strict()

// Signer signs and verifies tracking tokens with one secret. It is safe for
// concurrent use.
type Signer struct {
	pool sync.Pool // of *signScratch
}

type signScratch struct {
	mac     hash.Hash
	payload []byte
	sum     []byte
}

// NewSigner returns a Signer for secret, which must be at least
// MinSecretLen bytes.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("new signer: secret of %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	key := append([]byte(nil), secret...)
	s := &Signer{}
	s.pool.New = func() any {
		return &signScratch{mac: hmac.New(sha256.New, key), payload: make([]byte, 0, 256), sum: make([]byte, 0, sha256.Size)}
	}
	return s, nil
}

// AppendToken appends the token for c to dst. It costs one HMAC-SHA256 of
// about 100 bytes (around a microsecond) and allocates nothing but dst's
// growth. Strings longer than 256 bytes are cut to 256.
func (s *Signer) AppendToken(dst []byte, c *Claims) []byte {
	sc := s.pool.Get().(*signScratch)
	defer s.pool.Put(sc)
	p := append(sc.payload[:0], tokenVersion)
	p = binary.BigEndian.AppendUint32(p, uint32(c.Issued.Unix()))
	p = binary.BigEndian.AppendUint64(p, c.Cell)
	p = binary.BigEndian.AppendUint32(p, uint32(toE6(c.StoreLat)))
	p = binary.BigEndian.AppendUint32(p, uint32(toE6(c.StoreLng)))
	for _, v := range [...]string{c.AdID, c.CampaignID, c.AdvertiserID, c.PublisherID, c.StoreID} {
		if len(v) > maxIDLen {
			v = v[:maxIDLen]
		}
		p = binary.AppendUvarint(p, uint64(len(v)))
		p = append(p, v...)
	}
	sc.mac.Reset()
	sc.mac.Write(p)
	sc.sum = sc.mac.Sum(sc.sum[:0])
	p = append(p, sc.sum[:macLen]...)
	sc.payload = p
	return b64.AppendEncode(dst, p)
}

// Verify checks that token was signed by this Signer and unaltered, and
// returns its claims and its ID. ErrInvalidToken otherwise. It does not
// check expiry.
func (s *Signer) Verify(token string) (Claims, storage.TokenID, error) {
	var id storage.TokenID
	if len(token) > MaxTokenLen || len(token) < b64.EncodedLen(fixedLen+macLen) {
		return Claims{}, id, ErrInvalidToken
	}
	// The decoder skips line breaks, so without this check a token with
	// one inside would verify as the genuine one (found by FuzzVerify).
	if strings.ContainsAny(token, "\r\n") {
		return Claims{}, id, ErrInvalidToken
	}
	sc := s.pool.Get().(*signScratch)
	defer s.pool.Put(sc)
	raw, err := b64.AppendDecode(sc.payload[:0], []byte(token))
	if err != nil || len(raw) < fixedLen+macLen {
		return Claims{}, id, ErrInvalidToken
	}
	sc.payload = raw
	p, tag := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	sc.mac.Reset()
	sc.mac.Write(p)
	sc.sum = sc.mac.Sum(sc.sum[:0])
	if !hmac.Equal(sc.sum[:macLen], tag) {
		return Claims{}, id, ErrInvalidToken
	}
	c, ok := parsePayload(p)
	if !ok {
		// Signed by this secret yet unreadable: a version from the
		// future. Treat it like any other token we cannot honour.
		return Claims{}, id, ErrInvalidToken
	}
	copy(id[:], tag)
	return c, id, nil
}

func parsePayload(p []byte) (Claims, bool) {
	var c Claims
	if len(p) < fixedLen || p[0] != tokenVersion {
		return c, false
	}
	c.Issued = time.Unix(int64(binary.BigEndian.Uint32(p[1:])), 0)
	c.Cell = binary.BigEndian.Uint64(p[5:])
	c.StoreLat = fromE6(int32(binary.BigEndian.Uint32(p[13:])))
	c.StoreLng = fromE6(int32(binary.BigEndian.Uint32(p[17:])))
	p = p[fixedLen:]
	for _, dst := range [...]*string{&c.AdID, &c.CampaignID, &c.AdvertiserID, &c.PublisherID, &c.StoreID} {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > maxIDLen || n > uint64(len(p)-k) {
			return Claims{}, false
		}
		*dst = string(p[k : k+int(n)])
		p = p[k+int(n):]
	}
	return c, len(p) == 0
}

func toE6(deg float64) int32 {
	if math.IsNaN(deg) {
		return 0
	}
	return int32(math.Round(max(-180, min(180, deg)) * 1e6))
}

func fromE6(v int32) float64 { return float64(v) / 1e6 }
