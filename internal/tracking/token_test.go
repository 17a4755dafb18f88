package tracking_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/navad/navad/internal/tracking"
)

var testSecret = []byte("test-tracking-secret-0123456789abcdef")

func signer(t testing.TB, secret []byte) *tracking.Signer {
	t.Helper()
	s, err := tracking.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sampleClaims() tracking.Claims {
	return tracking.Claims{
		AdID: "abcdefgh12.1", CampaignID: "cmp_5x3kq2m7", AdvertiserID: "adv_brewery", PublisherID: "pub_navi",
		StoreID: "shinjuku-3-chome", StoreLat: 35.690512, StoreLng: 139.700498, Cell: 0x882f5aa6b7fffff,
		Issued: time.Date(2026, 11, 6, 19, 30, 15, 0, time.UTC),
	}
}

func TestTokenRoundTrip(t *testing.T) {
	s := signer(t, testSecret)
	tests := []struct {
		name string
		give tracking.Claims
	}{
		{"typical", sampleClaims()},
		{"empty strings and zero cell", tracking.Claims{Issued: time.Unix(1, 0)}},
		{"southwest", tracking.Claims{AdID: "x.1", CampaignID: "c", AdvertiserID: "a", PublisherID: "p", StoreID: "s",
			StoreLat: -89.999999, StoreLng: -179.999999, Issued: time.Unix(4000000000, 0)}},
		{"long IDs", tracking.Claims{AdID: strings.Repeat("r", 40), CampaignID: strings.Repeat("c", 128),
			AdvertiserID: strings.Repeat("a", 128), PublisherID: strings.Repeat("p", 128), StoreID: strings.Repeat("s", 128),
			Issued: time.Unix(1793577600, 0)}},
		// The longest token there is: every ID at the 256 bytes a token
		// keeps (1,770 characters; MaxTokenLen once rounded down to 1,769).
		{"longest", tracking.Claims{AdID: strings.Repeat("r", 256), CampaignID: strings.Repeat("c", 256),
			AdvertiserID: strings.Repeat("a", 256), PublisherID: strings.Repeat("p", 256), StoreID: strings.Repeat("s", 256),
			Issued: time.Unix(1793577600, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := string(s.AppendToken(nil, &tt.give))
			if len(tok) > tracking.MaxTokenLen {
				t.Fatalf("token of %d characters exceeds MaxTokenLen %d", len(tok), tracking.MaxTokenLen)
			}
			for _, c := range tok {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
					t.Fatalf("token %q has %q, not URL-safe", tok, c)
				}
			}
			got, id, err := s.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if id == ([16]byte{}) {
				t.Fatal("zero token ID")
			}
			want := tt.give
			if !got.Issued.Equal(want.Issued) {
				t.Fatalf("issued %v, want %v", got.Issued, want.Issued)
			}
			if d := got.StoreLat - want.StoreLat; d > 1e-6 || d < -1e-6 {
				t.Fatalf("store lat %v, want %v", got.StoreLat, want.StoreLat)
			}
			got.Issued, want.Issued, got.StoreLat, want.StoreLat, got.StoreLng, want.StoreLng = time.Time{}, time.Time{}, 0, 0, 0, 0
			if got != want {
				t.Fatalf("claims %+v, want %+v", got, want)
			}
			// The same claims give the same token and ID: a token is its
			// own identity.
			_, id2, _ := s.Verify(string(s.AppendToken(nil, &tt.give)))
			if id2 != id {
				t.Fatal("the same claims gave another token ID")
			}
		})
	}
}

func TestTokenRejectsForgeries(t *testing.T) {
	s := signer(t, testSecret)
	c := sampleClaims()
	tok := string(s.AppendToken(nil, &c))
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	other := sampleClaims()
	other.StoreID = "another-store"
	otherTok := string(s.AppendToken(nil, &other))

	var bad []string
	// Every single-bit change of the payload or the tag.
	for i := range raw {
		for bit := range 8 {
			b := []byte(string(raw))
			b[i] ^= 1 << bit
			bad = append(bad, base64.RawURLEncoding.EncodeToString(b))
		}
	}
	// The payload of one token with the tag of another: pointing a token at
	// another store.
	otherRaw, _ := base64.RawURLEncoding.DecodeString(otherTok)
	spliced := append([]byte(string(otherRaw[:len(otherRaw)-16])), raw[len(raw)-16:]...)
	bad = append(bad,
		base64.RawURLEncoding.EncodeToString(spliced),
		string(signer(t, []byte("another-secret-0123456789abcdefghij")).AppendToken(nil, &c)), // forged with a guess
		"", "x", tok[:len(tok)-1], tok[:len(tok)/2], tok+"A", tok+"AA", "A"+tok,
		strings.Repeat("A", tracking.MaxTokenLen+1),
		tok[:len(tok)-1]+"=", strings.ReplaceAll(tok, "-", "+"), tok+"\x00", "%00"+tok,
		tok[:20]+"\n"+tok[20:], tok[:20]+"\r\n"+tok[20:], tok+"\n", // the decoder skips line breaks
	)
	for i, b := range bad {
		if b == tok || b == otherTok {
			continue
		}
		if _, _, err := s.Verify(b); !errors.Is(err, tracking.ErrInvalidToken) {
			t.Errorf("forgery %d (%.40q…) verified: err %v", i, b, err)
		}
	}
}

func TestNewSignerWantsALongSecret(t *testing.T) {
	if _, err := tracking.NewSigner([]byte("short")); err == nil {
		t.Fatal("a 5-byte secret was accepted")
	}
}

// FuzzVerify: no input panics, and only the genuine token verifies.
func FuzzVerify(f *testing.F) {
	s := signer(f, testSecret)
	c := sampleClaims()
	genuine := string(s.AppendToken(nil, &c))
	f.Add(genuine)
	f.Add(genuine[:30])
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		got, _, err := s.Verify(tok)
		if err == nil && tok != genuine {
			t.Fatalf("%q verified as %+v", tok, got)
		}
	})
}

func BenchmarkAppendToken(b *testing.B) {
	s := signer(b, testSecret)
	c := sampleClaims()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = s.AppendToken(buf[:0], &c)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := signer(b, testSecret)
	c := sampleClaims()
	tok := string(s.AppendToken(nil, &c))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
