//go:build linux

package hugepages

import (
	"syscall"
	"testing"
	"unsafe"
)

func TestAnonymousRW(t *testing.T) {
	tests := []struct {
		line   string
		lo, hi uintptr
		ok     bool
	}{
		{"c000000000-c004000000 rw-p 00000000 00:00 0 ", 0xc000000000, 0xc004000000, true},
		{"7f1c2a000000-7f1c2a400000 rw-p 00000000 00:00 0", 0x7f1c2a000000, 0x7f1c2a400000, true},
		{"55d0c0a00000-55d0c0c00000 rw-p 00000000 00:00 0                          [heap]", 0, 0, false},
		{"7f1c2a000000-7f1c2a400000 rw-p 00001000 fd:01 1234567                    /usr/lib/libc.so.6", 0, 0, false},
		{"7f1c2a000000-7f1c2a400000 r--p 00000000 00:00 0", 0, 0, false},
		{"7f1c2a000000-7f1c2a400000 rw-s 00000000 00:01 42", 0, 0, false},
		{"garbage", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, ok := anonymousRW([]byte(tt.line))
		if lo != tt.lo || hi != tt.hi || ok != tt.ok {
			t.Errorf("%q: %x-%x %v, want %x-%x %v", tt.line, lo, hi, ok, tt.lo, tt.hi, tt.ok)
		}
	}
}

// TestCollapseFindsResidentMemory maps 16 MB, touches three quarters of it
// in whole huge-page blocks and one block only in part, and checks that
// Collapse counts the resident blocks, not the sparse one, and collapses no
// more than it found. Whether the kernel then collapses them depends on its
// configuration, so that is reported, not asserted.
func TestCollapseFindsResidentMemory(t *testing.T) {
	huge, err := hugePageSize()
	if err != nil {
		t.Fatalf("this kernel has no transparent huge pages (%v): the test machine should", err)
	}
	const size = 16 << 20
	mem, err := syscall.Mmap(-1, 0, size+int(huge), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	// The blocks Collapse sees are aligned; find ours in the mapping.
	start := 0
	for uintptr(unsafeAddr(mem[start:]))%huge != 0 {
		start += 4096
	}
	blocks := mem[start : start+size]
	h := int(huge)
	dense := 0
	for b := 0; b+h <= len(blocks); b += h {
		switch {
		case b/h%4 == 3: // a quarter of each block's pages: too sparse
			for i := b; i < b+h/4; i += 4096 {
				blocks[i] = 1
			}
		default:
			for i := b; i < b+h; i += 4096 {
				blocks[i] = 1
			}
			dense++
		}
	}
	before, err := Collapse()
	if err != nil {
		t.Fatal(err)
	}
	if before.Resident < int64(dense*h) {
		t.Fatalf("Collapse found %d bytes in resident blocks, want at least the test's %d", before.Resident, dense*h)
	}
	if before.Collapsed > before.Resident {
		t.Fatalf("collapsed %d bytes of %d resident", before.Collapsed, before.Resident)
	}
	t.Logf("%d MB resident in whole blocks, %d MB collapsed", before.Resident>>20, before.Collapsed>>20)
	for i := range blocks { // the memory is as it was
		want := byte(0)
		if i%4096 == 0 && (i/h%4 != 3 || i%h < h/4) {
			want = 1
		}
		if blocks[i] != want {
			t.Fatalf("byte %d is %d after Collapse, want %d", i, blocks[i], want)
		}
	}
}

func unsafeAddr(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
