package campaigns

import "testing"

// TestWeekKey: two weeks have the same key exactly when they are Equal,
// however their hours were written.
func TestWeekKey(t *testing.T) {
	hours := []Hours{
		nil,
		{{From: "10:00", To: "22:00"}},
		{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, From: "10:00", To: "22:00"}}, // the same week
		{{From: "10:00", To: "21:59"}},
		{{From: "17:00", To: "02:00"}},
		{{Days: []string{"fri"}, From: "17:00", To: "02:00"}},
		{{Days: []string{"sat"}, From: "17:00", To: "02:00"}},
		{{Days: []string{"mon"}, From: "00:00", To: "12:00"}, {Days: []string{"mon"}, From: "12:00", To: "24:00"}},
		{{Days: []string{"mon"}, From: "00:00", To: "24:00"}}, // the same as the one before
		{{From: "00:00", To: "24:00"}},
	}
	weeks := make([]Week, len(hours))
	for i, h := range hours {
		w, p := h.Compile()
		if p.Len() > 0 {
			t.Fatalf("hours %d: %v", i, p)
		}
		weeks[i] = w
	}
	pairs := 0
	for i, a := range weeks {
		for j, b := range weeks {
			if same, equal := string(a.AppendKey(nil)) == string(b.AppendKey(nil)), a.Equal(b); same != equal {
				t.Errorf("hours %d and %d: same key %v, Equal %v", i, j, same, equal)
			} else if equal && i != j {
				pairs++
			}
		}
	}
	if pairs < 4 { // 1 and 2, 7 and 8, each way; perhaps 9 with always
		t.Errorf("%d equal pairs, want at least 4: the cases no longer test equal keys", pairs)
	}
}
