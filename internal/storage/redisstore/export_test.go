package redisstore

// SetFoldAt sets the length past which a coarse rollup's served log is
// folded, and returns a function that restores it.
func SetFoldAt(n int) (restore func()) {
	old := foldAt
	foldAt = n
	return func() { foldAt = old }
}

// UserKey is the key of uid's window of a campaign.
var UserKey = userKey

// SetLogBatchBytes sets about how many bytes of unfolded served logs one
// round trip of a report reads, and returns a function that restores it.
func SetLogBatchBytes(n int) (restore func()) {
	old := logBatchBytes
	logBatchBytes = n
	return func() { logBatchBytes = old }
}
