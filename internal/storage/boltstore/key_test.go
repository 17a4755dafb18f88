package boltstore

import (
	"strings"
	"testing"

	"github.com/navad/navad/campaigns"
)

// TestCheckKey: a key part is refused when it is empty, too long, or holds
// the separator anywhere; anything else is taken.
func TestCheckKey(t *testing.T) {
	long := strings.Repeat("x", campaigns.MaxIDLen*4)
	for _, id := range []string{"a", "cmp_1", "居酒屋", long, "a\x01b", "\xff"} {
		if err := checkKey("id", id); err != nil {
			t.Errorf("checkKey(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"", long + "x", "\x00", "\x00a", "a\x00", "a\x00b", strings.Repeat("y", 40) + "\x00" + strings.Repeat("z", 40)} {
		if err := checkKey("id", id); err == nil {
			t.Errorf("checkKey(%q) = nil, want an error", id)
		}
		if validKey(id) {
			t.Errorf("validKey(%q) = true", id)
		}
	}
}
