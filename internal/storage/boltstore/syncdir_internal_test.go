package boltstore

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestOpenSyncsNewEntries: Open fsyncs the directory of a file it creates,
// and the parents of the directories it creates, so that a power cut
// after the first acknowledged write cannot take the file away; a file
// that was there already costs no sync.
func TestOpenSyncsNewEntries(t *testing.T) {
	var synced []string
	real := syncDir
	syncDir = func(dir string) error {
		synced = append(synced, dir)
		return real(dir)
	}
	t.Cleanup(func() { syncDir = real })
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b")
	tests := []struct {
		give string
		want []string
	}{
		{"a new file in new directories", []string{dir, filepath.Join(base, "a"), base}},
		{"the file again", nil},
	}
	for _, tt := range tests {
		synced = nil
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(synced)
		slices.Sort(tt.want)
		if !slices.Equal(synced, tt.want) {
			t.Errorf("%s: synced %q, want %q", tt.give, synced, tt.want)
		}
	}
}
