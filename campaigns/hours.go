package campaigns

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// HourRange is a weekly time range in the business time zone: on each of Days
// (mon…sun; empty means every day) from From to To, as "HH:MM". "24:00" ends
// a day, and a range whose From is later than its To runs past midnight into
// the next day (17:00-02:00 on fri is Friday 17:00 to Saturday 02:00).
type HourRange struct {
	Days []string `json:"days,omitempty"`
	From string   `json:"from"`
	To   string   `json:"to"`
}

// Hours is a weekly schedule: the union of its ranges. Empty means always.
type Hours []HourRange

// MarshalJSON writes no hours as [], not null.
func (h Hours) MarshalJSON() ([]byte, error) {
	if h == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]HourRange(h))
}

const minutesPerWeek = 7 * 24 * 60

// weekDays are the day names of HourRange.Days, Monday first; dayNames
// numbers them from 0.
var weekDays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

var dayNames = func() map[string]int {
	m := make(map[string]int, len(weekDays))
	for i, d := range weekDays {
		m[d] = i
	}
	return m
}()

// Week is a compiled weekly schedule: sorted, disjoint minute-of-week spans.
// The zero Week is "always". Contains is O(log spans) and allocation free.
type Week struct {
	spans []span // [from, to) in minutes since Monday 00:00; nil means always
}

type span struct{ from, to int32 }

// Equal reports whether w and v are the same schedule.
func (w Week) Equal(v Week) bool {
	return (w.spans == nil) == (v.spans == nil) && slices.Equal(w.spans, v.spans)
}

// Always reports whether the schedule has no restriction.
func (w Week) Always() bool { return w.spans == nil }

// AppendKey appends to dst a key that is the same for two weeks exactly
// when they are Equal, so that weeks can be interned by it (a national
// catalogue's million stores share a few hundred schedules) without a
// string for each: "always" appends nothing.
func (w Week) AppendKey(dst []byte) []byte {
	if w.spans == nil {
		return dst
	}
	dst = append(dst, 's') // not empty: a schedule with no span is never open
	for _, s := range w.spans {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(s.from))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(s.to))
	}
	return dst
}

// Contains reports whether t, read in its own location, falls in the schedule.
func (w Week) Contains(t time.Time) bool {
	if w.spans == nil {
		return true
	}
	return w.ContainsMinute(MinuteOfWeek(t))
}

// ContainsMinute reports whether minute-of-week m (0 = Monday 00:00) falls in
// the schedule.
func (w Week) ContainsMinute(m int) bool {
	if w.spans == nil {
		return true
	}
	i, _ := slices.BinarySearchFunc(w.spans, int32(m), func(s span, m int32) int {
		switch {
		case s.to <= m:
			return -1
		case s.from > m:
			return 1
		}
		return 0
	})
	return i < len(w.spans) && w.spans[i].from <= int32(m) && int32(m) < w.spans[i].to
}

// MinuteOfWeek returns the minutes since Monday 00:00 of t in t's location.
func MinuteOfWeek(t time.Time) int {
	day := (int(t.Weekday()) + 6) % 7 // Monday = 0
	return day*24*60 + t.Hour()*60 + t.Minute()
}

// Compile checks h and turns it into a Week. Problems are reported with field
// names relative to h ("[0].from").
func (h Hours) Compile() (Week, *Problems) {
	var p Problems
	if len(h) == 0 {
		return Week{}, &p
	}
	var spans []span
	for i, r := range h {
		field := fmt.Sprintf("[%d]", i)
		from, okFrom := parseClock(r.From, false)
		if !okFrom {
			p.Add(field+".from", "must be a time of day HH:MM between 00:00 and 23:59, got %q", r.From)
		}
		to, okTo := parseClock(r.To, true)
		if !okTo {
			p.Add(field+".to", "must be a time of day HH:MM between 00:00 and 24:00, got %q", r.To)
		}
		if okFrom && okTo && from == to {
			p.Add(field, "from and to are equal (%s); use 00:00-24:00 for a whole day", r.From)
			okTo = false
		}
		days := r.Days
		if len(days) == 0 {
			days = weekDays
		}
		var dayIdx []int
		for j, d := range days {
			n, ok := dayNames[d]
			if !ok {
				p.Add(fmt.Sprintf("%s.days[%d]", field, j), "must be one of mon, tue, wed, thu, fri, sat, sun, got %q", d)
				continue
			}
			dayIdx = append(dayIdx, n)
		}
		if !okFrom || !okTo {
			continue
		}
		for _, d := range dayIdx {
			start := d*24*60 + from
			end := d*24*60 + to
			if to < from { // past midnight into the next day
				end += 24 * 60
			}
			if end <= minutesPerWeek {
				spans = append(spans, span{int32(start), int32(end)})
				continue
			}
			// Sunday night into Monday morning wraps around the week.
			spans = append(spans, span{int32(start), minutesPerWeek}, span{0, int32(end - minutesPerWeek)})
		}
	}
	if p.Len() > 0 {
		return Week{}, &p
	}
	return Week{spans: mergeSpans(spans)}, &p
}

func mergeSpans(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int { return int(a.from - b.from) })
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && s.from <= out[n-1].to {
			out[n-1].to = max(out[n-1].to, s.to)
			continue
		}
		out = append(out, s)
	}
	return slices.Clip(out)
}

// parseClock parses "HH:MM" into minutes since midnight; "24:00" only when
// allow24 is set.
func parseClock(s string, allow24 bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	hh := int(s[0]-'0')*10 + int(s[1]-'0')
	mm := int(s[3]-'0')*10 + int(s[4]-'0')
	if mm > 59 {
		return 0, false
	}
	if hh == 24 && mm == 0 && allow24 {
		return 24 * 60, true
	}
	if hh > 23 {
		return 0, false
	}
	return hh*60 + mm, true
}
