//go:build !linux

package boltstore

func dropMapped(addr uintptr, size, pageSize int) error { return errNotSupported }
