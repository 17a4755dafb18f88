package boltstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/storage/boltstore"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "navad-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := boltstore.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	err = s.PutStores(ctx, "adv_brewery", []campaigns.Store{
		{ID: "shinjuku-2", Name: "新宿二丁目店", Lat: 35.6905, Lng: 139.7082, Products: []string{"beer-350"}},
		{ID: "shinjuku-1", Name: "新宿一丁目店", Lat: 35.6896, Lng: 139.7100, Products: []string{"beer-350"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	err = s.Stores(ctx, "adv_brewery", func(st *campaigns.Store) bool {
		fmt.Println(st.ID, st.Name)
		return true
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// shinjuku-1 新宿一丁目店
	// shinjuku-2 新宿二丁目店
}
