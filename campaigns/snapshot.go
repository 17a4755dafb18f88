package campaigns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"github.com/ikawaha/kagome-dict/dict"
	datrie "github.com/ikawaha/kagome-dict/dict/trie"
)

// DictionarySnapshotEnv names a file that holds the loaded dictionary
// (kagome's tables, the entry table and the lexicon) written out plainly.
// When it is set, the first process to load the dictionary writes the file
// and every later one reads it instead of loading.
//
// It serves the test suite's race pass: under the race detector, unzipping
// kagome's dictionary, decoding it and building the lexicon take 13–18 s a
// test binary, against about 2 s without it, and seven test binaries analyse
// Japanese keywords; reading a snapshot takes well under a second.
// `make test` sets it for that pass alone, to a file of its own run, written
// by a plain run of TestDictionarySnapshot first. It is not an operator
// setting: a snapshot is not checked against the navad build that reads it,
// so one written by another version could be read as this one's.
const DictionarySnapshotEnv = "NAVAD_DICT_SNAPSHOT"

// snapshotMagic starts a snapshot file; the number after it is the
// format's version, changed whenever what is written changes.
const (
	snapshotMagic   = "navad dictionary snapshot\n"
	snapshotVersion = 1
)

// dictionaryFrom returns the dictionary kept at path, or, when there is
// no file there, loads it and keeps it there for the next process. A file
// that is there but cannot be read is a panic: make test made it, so it is
// a bug, not a reason to load the dictionary quietly the slow way.
func dictionaryFrom(path string) *dictionary {
	t0 := time.Now()
	b, err := os.ReadFile(path)
	if err == nil {
		d, err := readSnapshot(b)
		if err != nil {
			panic(fmt.Sprintf("campaigns: %s %s: %v", DictionarySnapshotEnv, path, err))
		}
		d.analyserTime = time.Since(t0)
		d.loadTime = d.analyserTime
		return d
	}
	d := loadFresh()
	if errors.Is(err, fs.ErrNotExist) {
		if err := writeSnapshotFile(path, d); err != nil {
			fmt.Fprintf(os.Stderr, "campaigns: %s: %v (each process loads the dictionary itself)\n", DictionarySnapshotEnv, err)
		}
	}
	return d
}

// writeSnapshotFile writes d's snapshot to path whole or not at all: to a
// temporary file first, renamed into place, so that a process reading it
// meanwhile finds no file or all of it.
func writeSnapshotFile(path string, d *dictionary) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(writeSnapshot(d))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// writeSnapshot returns d written out: the magic, the version, every table
// in a fixed order, and a CRC-32 of all before it. Slices and maps keep
// whether they were nil. A lexicon word's split (found lazily) is not
// kept.
func writeSnapshot(d *dictionary) []byte {
	w := &snapWriter{b: []byte(snapshotMagic)}
	w.u64(snapshotVersion)

	k := d.dict
	putMorphs(w, k.Morphs)
	w.count(k.POSTable.POSs == nil, len(k.POSTable.POSs))
	for _, p := range k.POSTable.POSs {
		putFixed(w, p)
	}
	w.strs(k.POSTable.NameList)
	putStringInt8s(w, k.ContentsMeta)
	w.table(k.Contents)
	w.u64(uint64(k.Connection.Row))
	w.u64(uint64(k.Connection.Col))
	putFixed(w, k.Connection.Vec)
	w.count(k.Index.Da == nil, len(k.Index.Da))
	for _, n := range k.Index.Da {
		w.u32(uint32(n.Base))
		w.u32(uint32(n.Check))
	}
	putInt32s(w, k.Index.Dup)
	w.strs(k.CharClass)
	putFixed(w, k.CharCategory)
	w.bools(k.InvokeList)
	w.bools(k.GroupList)
	putMorphs(w, k.UnkDict.Morphs)
	putInt32s(w, k.UnkDict.Index)
	putInt32s(w, k.UnkDict.IndexDup)
	putStringInt8s(w, k.UnkDict.ContentsMeta)
	w.table(k.UnkDict.Contents)
	if info := k.Info(); info != nil {
		w.u64(1)
		w.str(info.Name)
		w.str(info.Src)
	} else {
		w.u64(0)
	}

	e := d.entries
	w.str(e.text)
	putFixed(w, e.ends)
	putFixed(w, e.has)
	putFixed(w, e.uninfl)
	putFixed(w, e.posOf)
	w.table(e.posList)

	w.count(d.lex == nil, len(d.lex))
	for i := range d.lex {
		x := &d.lex[i]
		for _, v := range [...]uint32{x.at, x.textEnd, x.surfaceEnd, x.readingOfEnd, x.end} {
			w.u32(v)
		}
		w.bools([]bool{x.place, x.bigPlace})
	}
	w.str(d.lexText)
	w.count(d.postings.at == nil, len(d.postings.at))
	for key, n := range d.postings.at {
		w.u64(key)
		w.u32(n)
	}
	putFixed(w, d.postings.end)
	putFixed(w, d.postings.ids)
	w.count(d.placesByLast == nil, len(d.placesByLast))
	for r, ids := range d.placesByLast {
		w.u32(uint32(r))
		putFixed(w, ids)
	}
	w.count(d.kata.words == nil, len(d.kata.words))
	for word := range d.kata.words {
		w.str(word)
	}
	w.u64(uint64(d.kata.maxRunes))
	w.u32(crc32.ChecksumIEEE(w.b))
	return w.b
}

// readSnapshot reads what writeSnapshot wrote and builds the tokenizer
// and user dictionary on it as loadFresh does.
func readSnapshot(b []byte) (*dictionary, error) {
	if len(b) < len(snapshotMagic)+12 || !bytes.HasPrefix(b, []byte(snapshotMagic)) {
		return nil, errors.New("not a dictionary snapshot")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("snapshot damaged (checksum)")
	}
	r := &snapReader{b: body[len(snapshotMagic):]}
	if v := r.u64(); v != snapshotVersion {
		return nil, fmt.Errorf("snapshot format %d, want %d", v, snapshotVersion)
	}

	k := &dict.Dict{}
	k.Morphs = getMorphs(r)
	if n, isNil := r.countOf(8); !isNil {
		k.POSTable.POSs = make([]dict.POS, n)
		for i := range k.POSTable.POSs {
			k.POSTable.POSs[i] = getFixed[dict.POSID](r)
		}
	}
	k.POSTable.NameList = r.strs()
	k.ContentsMeta = getStringInt8s(r)
	k.Contents = r.table()
	k.Connection.Row = int64(r.u64())
	k.Connection.Col = int64(r.u64())
	k.Connection.Vec = getFixed[int16](r)
	if n, isNil := r.countOf(8); !isNil {
		k.Index.Da = make(datrie.DoubleArray, n)
		for i := range k.Index.Da {
			k.Index.Da[i].Base = int32(r.u32())
			k.Index.Da[i].Check = int32(r.u32())
		}
	}
	k.Index.Dup = getInt32s(r)
	k.CharClass = r.strs()
	k.CharCategory = getFixed[byte](r)
	k.InvokeList = r.bools()
	k.GroupList = r.bools()
	k.UnkDict.Morphs = getMorphs(r)
	k.UnkDict.Index = getInt32s(r)
	k.UnkDict.IndexDup = getInt32s(r)
	k.UnkDict.ContentsMeta = getStringInt8s(r)
	k.UnkDict.Contents = r.table()
	if r.u64() == 1 {
		k.SetInfo(&dict.Info{Name: r.str(), Src: r.str()})
	}

	e := &entryTable{}
	e.text = r.str()
	e.ends = getFixed[uint32](r)
	e.has = getFixed[uint64](r)
	e.uninfl = getFixed[uint64](r)
	e.posOf = getFixed[uint16](r)
	e.posList = r.table()

	d := &dictionary{dict: k, entries: e}
	if n, isNil := r.countOf(22); !isNil {
		d.lex = make([]lexEntry, n)
		for i := range d.lex {
			x := &d.lex[i]
			x.at, x.textEnd, x.surfaceEnd, x.readingOfEnd, x.end = r.u32(), r.u32(), r.u32(), r.u32(), r.u32()
			if flags := r.bools(); len(flags) == 2 {
				x.place, x.bigPlace = flags[0], flags[1]
			} else {
				r.fail()
			}
		}
	}
	d.lexText = r.str()
	if n, isNil := r.countOf(12); !isNil {
		d.postings.at = make(map[uint64]uint32, n)
		for range n {
			key := r.u64()
			d.postings.at[key] = r.u32()
		}
	}
	d.postings.end = getFixed[uint32](r)
	d.postings.ids = getFixed[int32](r)
	if n, isNil := r.countOf(12); !isNil {
		d.placesByLast = make(map[rune][]int32, n)
		for range n {
			last := rune(r.u32())
			d.placesByLast[last] = getFixed[int32](r)
		}
	}
	d.kata = &kataLexicon{}
	if n, isNil := r.countOf(8); !isNil {
		d.kata.words = make(map[string]struct{}, n)
		for range n {
			d.kata.words[r.str()] = struct{}{}
		}
	}
	d.kata.maxRunes = int(r.u64())
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d bytes after the snapshot", len(r.b))
	}
	d.buildAnalyser()
	d.buildRomajiWords()
	return d, nil
}

// snapWriter appends a snapshot's numbers (little-endian) and strings.
type snapWriter struct{ b []byte }

func (w *snapWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *snapWriter) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }

// count writes a slice's or map's length, or that it is nil: 0 for nil,
// the length plus one otherwise.
func (w *snapWriter) count(isNil bool, n int) {
	if isNil {
		w.u64(0)
		return
	}
	w.u64(uint64(n) + 1)
}

func (w *snapWriter) str(s string) {
	w.u64(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *snapWriter) strs(ss []string) {
	w.count(ss == nil, len(ss))
	for _, s := range ss {
		w.str(s)
	}
}

func (w *snapWriter) table(t [][]string) {
	w.count(t == nil, len(t))
	for _, ss := range t {
		w.strs(ss)
	}
}

func (w *snapWriter) bools(bs []bool) {
	w.count(bs == nil, len(bs))
	for _, b := range bs {
		if b {
			w.b = append(w.b, 1)
		} else {
			w.b = append(w.b, 0)
		}
	}
}

// fixed is the integer types a snapshot keeps in slices, each at its own
// width.
type fixed interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64
}

func putFixed[T fixed](w *snapWriter, xs []T) {
	w.count(xs == nil, len(xs))
	for _, x := range xs {
		switch unsafe.Sizeof(x) {
		case 1:
			w.b = append(w.b, byte(x))
		case 2:
			w.b = binary.LittleEndian.AppendUint16(w.b, uint16(x))
		case 4:
			w.u32(uint32(x))
		default:
			w.u64(uint64(x))
		}
	}
}

func putMorphs(w *snapWriter, ms dict.Morphs) {
	w.count(ms == nil, len(ms))
	for _, m := range ms {
		w.b = binary.LittleEndian.AppendUint16(w.b, uint16(m.LeftID))
		w.b = binary.LittleEndian.AppendUint16(w.b, uint16(m.RightID))
		w.b = binary.LittleEndian.AppendUint16(w.b, uint16(m.Weight))
	}
}

func putInt32s(w *snapWriter, m map[int32]int32) {
	w.count(m == nil, len(m))
	for k, v := range m {
		w.u32(uint32(k))
		w.u32(uint32(v))
	}
}

func putStringInt8s(w *snapWriter, m map[string]int8) {
	w.count(m == nil, len(m))
	for k, v := range m {
		w.str(k)
		w.b = append(w.b, byte(v))
	}
}

// snapReader reads what snapWriter wrote. Its first error sticks: every
// read after it returns zero values, and lengths are checked against what
// is left, so a damaged snapshot allocates no more than its own size.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) fail() {
	if r.err == nil {
		r.err = errors.New("snapshot truncated or malformed")
	}
}

func (r *snapReader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail()
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *snapReader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *snapReader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// count reads what snapWriter.count wrote, for elements of at least one
// byte each.
func (r *snapReader) count() (n int, isNil bool) { return r.countOf(1) }

// countOf reads a count of elements of at least size bytes each, checked
// against the bytes left.
func (r *snapReader) countOf(size int) (n int, isNil bool) {
	v := r.u64()
	if v == 0 {
		return 0, true
	}
	if v-1 > uint64(len(r.b)/size) {
		r.fail()
		return 0, true
	}
	return int(v - 1), false
}

func (r *snapReader) str() string {
	n := r.u64()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	return string(r.take(int(n)))
}

func (r *snapReader) strs() []string {
	n, isNil := r.countOf(8)
	if isNil {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.str()
	}
	return ss
}

func (r *snapReader) table() [][]string {
	n, isNil := r.countOf(8)
	if isNil {
		return nil
	}
	t := make([][]string, n)
	for i := range t {
		t[i] = r.strs()
	}
	return t
}

func (r *snapReader) bools() []bool {
	n, isNil := r.count()
	if isNil {
		return nil
	}
	p := r.take(n)
	bs := make([]bool, n)
	for i := range p {
		bs[i] = p[i] != 0
	}
	return bs
}

func getFixed[T fixed](r *snapReader) []T {
	size := int(unsafe.Sizeof(T(0)))
	n, isNil := r.countOf(size)
	if isNil {
		return nil
	}
	p := r.take(n * size)
	xs := make([]T, n)
	if p == nil {
		return xs
	}
	for i := range xs {
		switch size {
		case 1:
			xs[i] = T(p[i])
		case 2:
			xs[i] = T(binary.LittleEndian.Uint16(p[2*i:]))
		case 4:
			xs[i] = T(binary.LittleEndian.Uint32(p[4*i:]))
		default:
			xs[i] = T(binary.LittleEndian.Uint64(p[8*i:]))
		}
	}
	return xs
}

func getMorphs(r *snapReader) dict.Morphs {
	n, isNil := r.countOf(6)
	if isNil {
		return nil
	}
	p := r.take(6 * n)
	ms := make(dict.Morphs, n)
	if p == nil {
		return ms
	}
	for i := range ms {
		q := p[6*i:]
		ms[i] = dict.Morph{
			LeftID:  int16(binary.LittleEndian.Uint16(q)),
			RightID: int16(binary.LittleEndian.Uint16(q[2:])),
			Weight:  int16(binary.LittleEndian.Uint16(q[4:])),
		}
	}
	return ms
}

func getInt32s(r *snapReader) map[int32]int32 {
	n, isNil := r.countOf(8)
	if isNil {
		return nil
	}
	m := make(map[int32]int32, n)
	for range n {
		k := int32(r.u32())
		m[k] = int32(r.u32())
	}
	return m
}

func getStringInt8s(r *snapReader) map[string]int8 {
	n, isNil := r.countOf(9)
	if isNil {
		return nil
	}
	m := make(map[string]int8, n)
	for range n {
		k := r.str()
		if p := r.take(1); p != nil {
			m[k] = int8(p[0])
		}
	}
	return m
}
