//go:build !linux

package boltstore

// dropMapped does nothing where madvise is not at hand.
func dropMapped(addr uintptr, size, pageSize int) error { return nil }
