package campaigns

import (
	"fmt"
	"slices"
	"strings"
)

// osmDays are OpenStreetMap's weekday abbreviations, Monday first, as
// weekDays are.
var osmDays = []string{"Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"}

// hoursFromOSM reads the common part of OpenStreetMap's opening_hours
// syntax into Hours: "24/7"; rules separated by ";", each an optional
// weekday selector (Mo, Mo-Fr, Fr-Mo, Mo,We,Sa-Su) and either time ranges
// (09:00-18:00, 11:00-14:00,17:00-23:00, 18:00-02:00 past midnight,
// 24:00 as an end) or "off"/"closed". A later rule replaces what earlier
// ones said of its days, as in OSM ("Mo-Su 10:00-20:00; Su off"), hours
// an earlier rule ran past midnight into them included. Rules for
// public or school holidays alone ("PH off") are left out, and PH is
// dropped from a day list: navad keeps no holiday calendar.
//
// ok is false for anything else (months, weeks, sunrise, open ends,
// comments, "||" fallbacks), for a week with no open hour at all, which
// Hours cannot say (no hours means always open), and for more than
// MaxHourRanges ranges: the caller then keeps the store always open and
// says so.
func hoursFromOSM(s string) (h Hours, ok bool) {
	s = strings.TrimSpace(s)
	if s == "24/7" {
		return Hours{}, true
	}
	if s == "" || strings.Contains(s, "||") {
		return nil, false
	}
	var week [7][]span // minutes from each day's midnight; nil: closed
	for rule := range strings.SplitSeq(s, ";") {
		rule = strings.TrimSpace(rule)
		if rule == "" {
			continue
		}
		days, rest, holidayOnly, ok := osmDaySelector(rule)
		if !ok {
			return nil, false
		}
		if holidayOnly {
			continue
		}
		spans, ok := osmTimes(rest)
		if !ok {
			return nil, false
		}
		// A rule for a day also ends what an earlier rule's previous day
		// ran past midnight into it, as OSM's reference evaluator has it
		// ("Mo-Su 18:00-02:00; Tu off" is closed all Tuesday).
		for _, d := range days {
			prev := (d + 6) % 7
			if slices.Contains(days, prev) {
				continue // this rule replaces that day too
			}
			for i, sp := range week[prev] {
				week[prev][i].to = min(sp.to, 24*60)
			}
		}
		for _, d := range days {
			week[d] = slices.Clone(spans)
		}
	}
	byRange := map[span][]int{} // a time range → the days it is open then
	var order []span
	for d, spans := range week {
		for _, sp := range spans {
			if _, seen := byRange[sp]; !seen {
				order = append(order, sp)
			}
			byRange[sp] = append(byRange[sp], d)
		}
	}
	if len(order) == 0 {
		return nil, false
	}
	if len(order) == 1 && order[0] == (span{0, 24 * 60}) && len(byRange[order[0]]) == 7 {
		return Hours{}, true
	}
	for _, sp := range order {
		r := HourRange{From: clock(int(sp.from)), To: clock(int(sp.to) % (24 * 60))}
		if sp.to == 24*60 {
			r.To = "24:00"
		}
		if days := byRange[sp]; len(days) < 7 {
			for _, d := range days {
				r.Days = append(r.Days, weekDays[d])
			}
		}
		h = append(h, r)
	}
	if len(h) > MaxHourRanges {
		return nil, false
	}
	if _, p := h.Compile(); p.Len() > 0 {
		return nil, false
	}
	return h, true
}

// osmDaySelector splits a rule into its days (indexes from Monday; every
// day when the rule names none) and the rest. holidayOnly reports a rule
// for public or school holidays alone.
func osmDaySelector(rule string) (days []int, rest string, holidayOnly, ok bool) {
	sel, rest, found := strings.Cut(rule, " ")
	if !found || !startsWithDay(sel) {
		if startsWithDay(rule) { // "Mo-Fr" alone: no times
			return nil, "", false, false
		}
		return []int{0, 1, 2, 3, 4, 5, 6}, rule, false, true
	}
	holiday := false
	for part := range strings.SplitSeq(sel, ",") {
		if part == "PH" || part == "SH" {
			holiday = true
			continue
		}
		from, to, isRange := strings.Cut(part, "-")
		a := slices.Index(osmDays, from)
		if a < 0 {
			return nil, "", false, false
		}
		if !isRange {
			days = append(days, a)
			continue
		}
		b := slices.Index(osmDays, to)
		if b < 0 {
			return nil, "", false, false
		}
		for d := a; ; d = (d + 1) % 7 {
			days = append(days, d)
			if d == b {
				break
			}
		}
	}
	if len(days) == 0 {
		return nil, "", holiday, holiday
	}
	return days, strings.TrimSpace(rest), false, true
}

// startsWithDay reports whether a selector begins with a weekday or a
// holiday abbreviation.
func startsWithDay(s string) bool {
	if len(s) < 2 {
		return false
	}
	return slices.Contains(osmDays, s[:2]) || s[:2] == "PH" || s[:2] == "SH"
}

// osmTimes reads a rule's times: "off" or "closed" (no spans), or
// comma-separated ranges HH:MM-HH:MM (an hour of one digit is taken too),
// in minutes from the day's midnight; a range that ends before it starts
// runs past midnight.
func osmTimes(s string) ([]span, bool) {
	if s == "off" || s == "closed" {
		return nil, true
	}
	var spans []span
	for part := range strings.SplitSeq(s, ",") {
		from, to, found := strings.Cut(part, "-")
		if !found {
			return nil, false
		}
		a, okA := parseClock(twoDigitHour(strings.TrimSpace(from)), false)
		b, okB := parseClock(twoDigitHour(strings.TrimSpace(to)), true)
		if !okA || !okB || a == b {
			return nil, false
		}
		if b < a {
			b += 24 * 60
		}
		spans = append(spans, span{int32(a), int32(b)})
	}
	return spans, len(spans) > 0
}

// twoDigitHour writes "9:00" as "09:00"; anything else is left as it is.
func twoDigitHour(s string) string {
	if len(s) == 4 && s[1] == ':' {
		return "0" + s
	}
	return s
}

// clock writes minutes since midnight as HH:MM.
func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
