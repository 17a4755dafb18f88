package pacing

import "time"

// ReturnIdleLeases gives back the ads of leases unused since idle, as the
// Pacer's background loop does every returnInterval for returnIdle.
func ReturnIdleLeases(p *Pacer, idle time.Time) error { return p.returnLeases(idle, false) }
