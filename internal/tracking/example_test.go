package tracking_test

import (
	"fmt"
	"time"

	"github.com/navad/navad/internal/tracking"
)

// A token carries what to count; any change to it fails verification.
func ExampleSigner() {
	s, err := tracking.NewSigner([]byte("an-example-secret-of-32-bytes-or-more"))
	if err != nil {
		panic(err)
	}
	tok := string(s.AppendToken(nil, &tracking.Claims{
		AdID: "k3j5h2g7.1", CampaignID: "cmp_beer", AdvertiserID: "adv_brewery", PublisherID: "pub_navi",
		StoreID: "shinjuku-1", StoreLat: 35.6905, StoreLng: 139.7005, Cell: 0x882f5aa6b7fffff,
		Issued: time.Date(2026, 11, 6, 19, 30, 0, 0, time.UTC),
	}))
	c, _, err := s.Verify(tok)
	fmt.Println(c.CampaignID, c.StoreID, c.StoreLat, c.Issued.UTC().Format(time.RFC3339), err)

	altered := tok[:10] + "A" + tok[11:]
	if tok[10] == 'A' {
		altered = tok[:10] + "B" + tok[11:]
	}
	_, _, err = s.Verify(altered)
	fmt.Println(err)
	// Output:
	// cmp_beer shinjuku-1 35.6905 2026-11-06T19:30:00Z <nil>
	// invalid tracking token
}
