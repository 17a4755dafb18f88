package campaigns

import (
	"reflect"
	"testing"
	"time"
)

// TestHoursFromOSM: the common opening_hours forms become Hours that open
// and close where OSM says; the rest are refused, never half read.
func TestHoursFromOSM(t *testing.T) {
	weekdays := []string{"mon", "tue", "wed", "thu", "fri"}
	for _, tt := range []struct {
		in   string
		want Hours // nil with ok false
		ok   bool
	}{
		{"24/7", Hours{}, true},
		{"Mo-Su 00:00-24:00", Hours{}, true},
		{"09:00-21:00", Hours{{From: "09:00", To: "21:00"}}, true},
		{"Mo-Fr 09:00-18:00", Hours{{Days: weekdays, From: "09:00", To: "18:00"}}, true},
		{" Mo-Fr 9:00 - 18:00 ; ", Hours{{Days: weekdays, From: "09:00", To: "18:00"}}, true},
		{"Mo-Fr 09:00-18:00; Sa,Su 10:00-17:00", Hours{{Days: weekdays, From: "09:00", To: "18:00"}, {Days: []string{"sat", "sun"}, From: "10:00", To: "17:00"}}, true},
		{"Mo-Su 10:00-20:00; Su off", Hours{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat"}, From: "10:00", To: "20:00"}}, true},
		{"Mo-Fr 11:00-14:00,17:00-23:00", Hours{{Days: weekdays, From: "11:00", To: "14:00"}, {Days: weekdays, From: "17:00", To: "23:00"}}, true},
		{"Fr-Mo 18:00-02:00", Hours{{Days: []string{"mon", "fri", "sat", "sun"}, From: "18:00", To: "02:00"}}, true},
		{"Mo,We 10:00-24:00", Hours{{Days: []string{"mon", "wed"}, From: "10:00", To: "24:00"}}, true},
		{"Mo-Fr 09:00-18:00; PH off", Hours{{Days: weekdays, From: "09:00", To: "18:00"}}, true},
		{"Sa,Su,PH 10:00-16:00", Hours{{Days: []string{"sat", "sun"}, From: "10:00", To: "16:00"}}, true},
		{"Mo-Su 18:00-02:00; Tu off", Hours{{Days: []string{"mon"}, From: "18:00", To: "24:00"}, {Days: []string{"wed", "thu", "fri", "sat", "sun"}, From: "18:00", To: "02:00"}}, true}, // closed all Tuesday
		{"Mo-Th 11:00-23:00; Fr-Sa 11:00-01:00; Su 11:00-22:00", Hours{{Days: []string{"mon", "tue", "wed", "thu"}, From: "11:00", To: "23:00"}, {Days: []string{"fri"}, From: "11:00", To: "01:00"}, {Days: []string{"sat"}, From: "11:00", To: "24:00"}, {Days: []string{"sun"}, From: "11:00", To: "22:00"}}, true},
		{"Mo 10:00-12:00; Mo 14:00-16:00", Hours{{Days: []string{"mon"}, From: "14:00", To: "16:00"}}, true},
		{"", nil, false},
		{"off", nil, false},                       // never open: Hours cannot say so
		{"Mo-Su off", nil, false},                 // the same
		{"sunrise-sunset", nil, false},            // solar times
		{"Mo-Fr 18:00+", nil, false},              // an open end
		{"Jan-Mar Mo-Fr 09:00-17:00", nil, false}, // months
		{"Mo-Fr 09:00-18:00 || 10:00-12:00", nil, false},
		{"Mo-Fr", nil, false},
		{"Mo-Xy 09:00-18:00", nil, false},
		{"Mo 25:00-26:00", nil, false},
		{"Mo 10:00-10:00", nil, false},
		{`Mo-Fr 09:00-18:00 "by appointment"`, nil, false},
	} {
		got, ok := hoursFromOSM(tt.in)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("hoursFromOSM(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	// Past midnight, the week wraps: Sunday 18:00-02:00 holds Monday 01:00.
	h, ok := hoursFromOSM("Su 18:00-02:00")
	if !ok {
		t.Fatal("Su 18:00-02:00 not read")
	}
	w, p := h.Compile()
	if p.Len() > 0 {
		t.Fatalf("compile: %v", p.Err())
	}
	jst := time.FixedZone("JST", 9*3600)
	for at, open := range map[time.Time]bool{
		time.Date(2026, 11, 29, 23, 0, 0, 0, jst): true,  // Sunday
		time.Date(2026, 11, 30, 1, 30, 0, 0, jst): true,  // Monday early
		time.Date(2026, 11, 30, 2, 30, 0, 0, jst): false, // Monday later
		time.Date(2026, 11, 29, 17, 0, 0, 0, jst): false, // Sunday before
	} {
		if got := w.Contains(at); got != open {
			t.Errorf("Su 18:00-02:00 open at %v: %v, want %v", at, got, open)
		}
	}
}

// FuzzHoursFromOSM: any opening_hours string is read or refused without a
// panic, and what is read compiles.
func FuzzHoursFromOSM(f *testing.F) {
	for _, s := range []string{"24/7", "Mo-Fr 09:00-18:00; PH off", "Fr-Mo 18:00-02:00", "Mo,We 10:00-24:00", "Sa,Su,PH 10:00-16:00", "Mo-Su 10:00-20:00; Su off", "9:00-1:00", "Mo-", "-", ";;", "Su 23:59-00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := hoursFromOSM(s)
		if !ok {
			if h != nil {
				t.Fatalf("%q refused with hours %+v", s, h)
			}
			return
		}
		if _, p := h.Compile(); p.Len() > 0 {
			t.Fatalf("%q read as %+v, which does not compile: %v", s, h, p.Err())
		}
	})
}
