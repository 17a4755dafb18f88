package campaigns

import "strings"

// Normalize folds text the way people type it on phones. Placeholder: the
// keyword work replaces it.
func Normalize(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }
