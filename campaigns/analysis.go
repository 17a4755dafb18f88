package campaigns

import "strings"

// keywordTerms returns the terms of a keyword: its normalized words.
func keywordTerms(text string) []string {
	return strings.Fields(Normalize(text))
}

// analyzeTerms returns the spellings of each term and the dictionary words
// that block them.
func analyzeTerms(terms []string) []termAnalysis {
	out := make([]termAnalysis, len(terms))
	for i, t := range terms {
		out[i] = analyzeTerm(t)
	}
	return out
}

func analyzeTerm(t string) termAnalysis {
	return termAnalysis{forms: []termForm{{text: t, kind: surfaceForm, hard: hardForm(t)}}}
}

// kataLexicon knows the katakana words of the dictionary.
type kataLexicon struct{}

func kataWords() *kataLexicon { return nil }

// splits reports whether a word may begin or end between runes i-1 and i of
// a run of katakana.
func (k *kataLexicon) splits(q *Query, i int) bool { return true }

func (ix *KeywordIndex) scanRomaji(q *Query) {}

// analyzeNegatives analyses the words of a negative keyword: their normalized
// spelling only, with the dictionary words that block them.
func analyzeNegatives(terms []string) []termAnalysis {
	return analyzeTerms(terms)
}
