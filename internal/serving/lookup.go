package serving

// Campaign returns the campaign with the given ID, active or paused, or nil
// when the snapshot has none: one map lookup, for the tracking of clicks,
// which redirect to the campaign's landing page.
func (s *Snapshot) Campaign(id string) *Campaign {
	return s.byID[id]
}
