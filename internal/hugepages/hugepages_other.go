//go:build !linux

package hugepages

import "errors"

// Collapse does nothing where there are no transparent huge pages to ask for.
func Collapse() (Result, error) {
	return Result{}, errors.New("huge pages: not supported on this system")
}
