package boltstore

import "syscall"

// dropMapped advises the kernel that the first size bytes of the mapping at
// addr are not needed (MADV_DONTNEED). For bbolt's read-only shared mapping
// of the file this only unmaps the pages from the process; the caller holds
// a read transaction, so bbolt cannot remap the file meanwhile.
func dropMapped(addr uintptr, size, pageSize int) error {
	if pageSize > 0 {
		size -= size % pageSize
	}
	if addr == 0 || size <= 0 {
		return nil
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
