package pacing

import "time"

// ReturnIdleLeases gives back the ads of leases unused since idle, as the
// Pacer's background loop does every returnInterval for returnIdle.
func ReturnIdleLeases(p *Pacer, idle time.Time) error { return p.returnLeases(idle, false) }

// AgeReturns makes the give-backs waiting for the next round d older, as if
// they had waited that much longer.
func AgeReturns(p *Pacer, d time.Duration) {
	p.leases.pmu.Lock()
	defer p.leases.pmu.Unlock()
	for i := range p.leases.pending {
		p.leases.pending[i].since = p.leases.pending[i].since.Add(-d)
	}
}

// AgeLostLeases makes the lost leases (lease.lost) d older.
func AgeLostLeases(p *Pacer, d time.Duration) {
	p.leases.mu.RLock()
	defer p.leases.mu.RUnlock()
	for _, l := range p.leases.m {
		l.mu.Lock()
		if l.lost != nil {
			l.lost.since = l.lost.since.Add(-d)
		}
		l.mu.Unlock()
	}
}

// SetCloseReturnsFor sets closeReturnsFor to d, and returns what undoes it.
func SetCloseReturnsFor(d time.Duration) func() {
	old := closeReturnsFor
	closeReturnsFor = d
	return func() { closeReturnsFor = old }
}

// AgeLeases makes every lease's last use d older.
func AgeLeases(p *Pacer, d time.Duration) {
	p.leases.mu.RLock()
	defer p.leases.mu.RUnlock()
	for _, l := range p.leases.m {
		l.mu.Lock()
		l.lastUse -= int64(d)
		l.mu.Unlock()
	}
}
