package salvage

// Phaser is a Counter that also wants to know when a phase of the work
// starts: its name, and its total in Add units (-1 when the phase counts
// nothing and only its name can be shown). The CLI's progress bar
// implements it to show the phase name and an ETA per phase.
type Phaser interface {
	Phase(name string, total int64)
}

// StartPhase tells c that phase name starts, when c is a Phaser.
func StartPhase(c Counter, name string, total int64) {
	if p, ok := c.(Phaser); ok {
		p.Phase(name, total)
	}
}
