package campaigns

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestDictionarySnapshot: a dictionary kept as a snapshot reads back
// equal to a fresh load, table for table, with the same tokenizer; the
// first load writes the file and leaves nothing else beside it. With
// NAVAD_DICT_SNAPSHOT set, as make test runs it before its race pass, the
// file written and checked is that one, which the race pass then reads.
// (The race pass leaves this test out: it has no goroutines, and its fresh
// load is what the snapshot saves there.)
func TestDictionarySnapshot(t *testing.T) {
	path := os.Getenv(DictionarySnapshotEnv)
	if path == "" {
		path = filepath.Join(t.TempDir(), "dictionary.snap")
	}
	_ = os.Remove(path)
	written := dictionaryFrom(path) // no file: loads, and writes it
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no snapshot written: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), filepath.Base(path)+".") {
			t.Errorf("temporary file %s left beside the snapshot", e.Name())
		}
	}
	read := dictionaryFrom(path) // the file: reads it
	fresh := loadFresh()
	sameDictionary(t, "written", written, fresh)
	sameDictionary(t, "read", read, fresh)
	if len(read.lex) < 200000 || len(read.kata.words) == 0 || len(read.postings.at) == 0 {
		t.Fatalf("snapshot read back %d lexicon words, %d katakana words, %d posting lists: not the dictionary",
			len(read.lex), len(read.kata.words), len(read.postings.at))
	}
	if got, want := read.tok.Wakati("渋谷の居酒屋"), fresh.tok.Wakati("渋谷の居酒屋"); !reflect.DeepEqual(got, want) {
		t.Errorf("tokenizer on the snapshot splits %q, a fresh one %q", got, want)
	}
}

// sameDictionary fails t unless got holds what want does (the load times
// aside).
func sameDictionary(t *testing.T, name string, got, want *dictionary) {
	t.Helper()
	for _, f := range []struct {
		field     string
		got, want any
	}{
		{"dict", got.dict, want.dict},
		{"entries", got.entries, want.entries},
		{"tok", got.tok, want.tok},
		{"lex", got.lex, want.lex},
		{"lexText", got.lexText, want.lexText},
		{"postings", got.postings, want.postings},
		{"placesByLast", got.placesByLast, want.placesByLast},
		{"kata", got.kata, want.kata},
		{"romajiWords", got.romajiWords, want.romajiWords},
		{"user", got.user, want.user},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s dictionary: %s differs from a fresh load's", name, f.field)
		}
	}
}

// TestDamagedSnapshotRefused: a snapshot that is not whole, not one, of
// another format or with a byte changed is refused with an error, and
// dictionaryFrom panics on it rather than load the slow way unnoticed.
func TestDamagedSnapshotRefused(t *testing.T) {
	good := writeSnapshot(japaneseDictionary())
	if _, err := readSnapshot(good); err != nil {
		t.Fatalf("a whole snapshot refused: %v", err)
	}
	resum := func(b []byte) []byte { // b with its checksum made right again
		binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
		return b
	}
	otherVersion := append([]byte(nil), good...)
	otherVersion[len(snapshotMagic)]++
	resum(otherVersion)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0x40
	trailing := resum(append(append(append([]byte(nil), good[:len(good)-4]...), 0, 0, 0, 0, 0), 0, 0, 0, 0))
	cut := resum(append(append([]byte(nil), good[:len(good)/3]...), 0, 0, 0, 0))
	hugeCount := append([]byte(nil), good[:len(snapshotMagic)+8]...)
	hugeCount = resum(append(binary.LittleEndian.AppendUint64(hugeCount, 1<<62), 0, 0, 0, 0))
	for _, tt := range []struct {
		name, want string
		b          []byte
	}{
		{"empty", "not a dictionary snapshot", nil},
		{"other file", "not a dictionary snapshot", []byte("morph.dict and the rest, zipped, of some size")},
		{"a byte changed", "checksum", flipped},
		{"cut short", "truncated or malformed", cut},
		{"another format", "snapshot format", otherVersion},
		{"bytes after it", "after the snapshot", trailing},
		{"a count past its end", "truncated or malformed", hugeCount},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readSnapshot(tt.b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}

	path := filepath.Join(t.TempDir(), "dictionary.snap")
	if err := os.WriteFile(path, flipped, 0o644); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "checksum") {
			t.Fatalf("dictionaryFrom a damaged snapshot: panic %v, want one naming the checksum", p)
		}
	}()
	dictionaryFrom(path)
}
