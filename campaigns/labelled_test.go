package campaigns

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
)

// labelledCase is a line of testdata/labelled.tsv.
type labelledCase struct {
	line      int
	match     MatchType
	keyword   string
	negatives []string
	query     string
	want      bool
	what      string
}

func readLabelled(t *testing.T) []labelledCase {
	t.Helper()
	f, err := os.Open("testdata/labelled.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []labelledCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		col := strings.Split(line, "\t")
		if len(col) != 6 || col[4] != "yes" && col[4] != "no" {
			t.Fatalf("labelled.tsv:%d: want 6 tab-separated columns ending yes|no, reason; got %q", n, line)
		}
		c := labelledCase{line: n, match: MatchType(col[0]), keyword: col[1], query: col[3], want: col[4] == "yes", what: col[5]}
		if col[2] != "-" {
			c.negatives = strings.Split(col[2], ",")
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestLabelled measures matching against the labelled set: precision must
// be 100% (no irrelevant ad) and recall at least 98%. Each case is run in an
// index of its own keyword and in one index of all the cases' keywords,
// which must agree.
func TestLabelled(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the dictionary")
	}
	cases := readLabelled(t)
	if len(cases) < 150 {
		t.Errorf("labelled set has %d cases, want at least 150", len(cases))
	}
	refs := make([]KeywordRef, len(cases))
	for i, c := range cases {
		refs[i] = KeywordRef{Keyword{c.keyword, c.match}, uint32(i)}
	}
	shared := NewKeywordIndex(refs)

	var tp, fp, fn, tn int
	var q Query
	for i, c := range cases {
		neg := CompileNegatives(c.negatives)
		q.Parse(c.query)
		got := len(NewKeywordIndex(refs[i:i+1]).Match(&q, nil)) > 0 && !neg.Block(&q)
		inShared := slices.Contains(shared.Match(&q, nil), uint32(i)) && !neg.Block(&q)
		if got != inShared {
			t.Errorf("labelled.tsv:%d: %s %q, query %q: alone %v, among all keywords %v", c.line, c.match, c.keyword, c.query, got, inShared)
		}
		switch {
		case got && c.want:
			tp++
		case got && !c.want:
			fp++
			t.Errorf("labelled.tsv:%d: false positive: %s %q (negatives %q), query %q (%s)", c.line, c.match, c.keyword, c.negatives, c.query, c.what)
		case !got && c.want:
			fn++
			t.Logf("labelled.tsv:%d: false negative: %s %q (negatives %q), query %q (%s)", c.line, c.match, c.keyword, c.negatives, c.query, c.what)
		default:
			tn++
		}
	}
	precision := float64(tp) / float64(max(1, tp+fp))
	recall := float64(tp) / float64(max(1, tp+fn))
	t.Logf("labelled set: %d cases (%d should match, %d should not): precision %.1f%%, recall %.1f%% (tp %d, fp %d, fn %d, tn %d)",
		len(cases), tp+fn, fp+tn, 100*precision, 100*recall, tp, fp, fn, tn)
	if precision < 1 {
		t.Errorf("precision %.1f%%, want 100%%", 100*precision)
	}
	if recall < 0.98 {
		t.Errorf("recall %.1f%%, want at least 98%%", 100*recall)
	}
}

// TestKeywordIndependence checks that whether a keyword matches a query
// does not depend on the other keywords of its index: each keyword of the
// labelled set (and a few that cut romaji words into pieces) matches each
// query (the set's, and some romaji compounds) alone as it does among all.
// Romaji words were once read whole only over other keywords' hits, so
// 居酒屋 matched shinjukuizakaya only beside a keyword for 新宿.
func TestKeywordIndependence(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the dictionary")
	}
	keywords := map[string]bool{}
	queries := map[string]bool{}
	for _, c := range readLabelled(t) {
		keywords[c.keyword] = true
		queries[c.query] = true
	}
	for _, k := range []string{"新宿", "渋谷", "東京", "京都", "東京都", "駅", "缶", "コーヒー", "居酒屋", "酒屋", "ラーメン", "パン", "ジャム", "雨", "理科", "新", "線", "シーン", "オレ"} {
		keywords[k] = true
	}
	for _, q := range []string{"shinjukuizakaya", "izakayashibuya", "ramenshinjuku", "kankohi", "kyotoeki", "tokyoto", "panjamu", "amerika", "shinkansen", "kafeore", "nishishinjuku"} {
		queries[q] = true
	}
	var refs []KeywordRef
	for k := range keywords {
		refs = append(refs, KeywordRef{Keyword{k, Broad}, uint32(len(refs))})
	}
	all := NewKeywordIndex(refs)
	alone := make([]*KeywordIndex, len(refs))
	for i := range refs {
		alone[i] = NewKeywordIndex(refs[i : i+1])
	}
	var q Query
	var got []uint32
	for s := range queries {
		q.Parse(s)
		got = all.Match(&q, got[:0])
		for i, r := range refs {
			a := len(alone[i].Match(&q, nil)) > 0
			if among := slices.Contains(got, r.Ref); a != among {
				t.Errorf("keyword %q, query %q: alone %v, among %d keywords %v", r.Keyword.Text, s, a, len(refs), among)
			}
		}
	}
}
