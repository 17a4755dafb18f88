package redisstore

import (
	"strconv"
	"testing"
)

// TestAtCapStaysBounded: at atCapMax windows a new one first drops those
// closed, and when most are still open, all of them.
func TestAtCapStaysBounded(t *testing.T) {
	a := atCap{m: make(map[string]fullWindow)}
	for i := range atCapMax {
		end := int64(100) // closed at now = 200
		if i%2 == 0 {
			end = 300
		}
		a.remember(strconv.Itoa(i), 3, end, 0)
	}
	a.remember("new", 3, 300, 200)
	if n := len(a.m); n != atCapMax/2+1 {
		t.Fatalf("%d windows after a sweep, want the %d open ones and the new one", n, atCapMax/2)
	}
	if !a.refuses("0", 3, 200) || a.refuses("1", 3, 200) || !a.refuses("new", 2, 299) || a.refuses("new", 4, 250) || a.refuses("new", 3, 300) {
		t.Fatal("refuses answers wrongly after a sweep")
	}
	for i := range atCapMax {
		a.remember("open-"+strconv.Itoa(i), 3, 1000, 200)
	}
	if n := len(a.m); n > atCapMax {
		t.Fatalf("%d windows remembered, want at most %d", n, atCapMax)
	}
}
