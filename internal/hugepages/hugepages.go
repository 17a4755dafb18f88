// Package hugepages moves navad's long-lived memory into huge pages.
//
// navad's decisions are bound by memory latency: a decision at national
// scale reads a few hundred scattered cache lines of a heap of about 650 MB
// (trees, presence sets, campaigns), and with 4 KB pages nearly each of those
// reads also misses the TLB; on a virtual machine a TLB miss walks two page
// tables, the guest's and the host's. In 2 MB pages the whole index fits in
// the TLB. Go's runtime does not ask for huge pages, and kernels commonly
// give them only to memory that asks (transparent_hugepage set to
// "madvise"), so once the index is built navad collapses the memory it holds
// into huge pages (Collapse).
package hugepages

// Result is what Collapse did.
type Result struct {
	Resident  int64 // bytes in huge-page blocks resident enough to collapse
	Collapsed int64 // of those, bytes the kernel moved into huge pages
}
