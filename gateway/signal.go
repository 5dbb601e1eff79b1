package gateway

import "sync"

// signal tells whoever waits that something changed: changed returns a
// channel that the next wake closes. A wait is then "read the state; if it
// is not there yet, wait for changed" (take the channel before reading, so
// no change is missed), with no clock and no polling. Nothing is allocated
// while nobody waits.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// changed returns a channel closed at the next wake.
func (s *signal) changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// wake closes the channel of those waiting, if any.
func (s *signal) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}
