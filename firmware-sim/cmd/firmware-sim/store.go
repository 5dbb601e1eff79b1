package main

import (
	"strconv"
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// idStore is paho's message store (mqtt.Store) for a publisher that keeps
// thousands of QoS 1 messages in flight: paho keys each stored packet by
// direction and message id ("o.123", "i.45"), so the packets sit in two
// arrays indexed by id instead of a map. paho's MemoryStore, a map of up
// to 16,000 entries here, cost the simulator 9 % of its CPU. paho resends
// from the store after an automatic reconnect, so it must keep what it is
// given (TestQoS1AcrossBrokerRestart). A key of another form goes to a
// map, as MemoryStore would keep it.
type idStore struct {
	mu    sync.Mutex
	out   [1 << 16]packets.ControlPacket // "o.<id>"
	in    [1 << 16]packets.ControlPacket // "i.<id>"
	other map[string]packets.ControlPacket
}

var _ mqtt.Store = (*idStore)(nil)

func newIDStore() *idStore { return &idStore{other: map[string]packets.ControlPacket{}} }

// slot returns the array element for key, or nil for another form.
func (s *idStore) slot(key string) *packets.ControlPacket {
	if len(key) < 3 || key[1] != '.' {
		return nil
	}
	id, err := strconv.ParseUint(key[2:], 10, 16)
	if err != nil {
		return nil
	}
	switch key[0] {
	case 'o':
		return &s.out[id]
	case 'i':
		return &s.in[id]
	}
	return nil
}

func (s *idStore) Open() {}

func (s *idStore) Put(key string, m packets.ControlPacket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.slot(key); p != nil {
		*p = m
		return
	}
	s.other[key] = m
}

func (s *idStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.slot(key); p != nil {
		return *p
	}
	return s.other[key]
}

// All returns every key held (paho asks only when it resends, after a
// reconnect).
func (s *idStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for id, m := range s.out {
		if m != nil {
			keys = append(keys, "o."+strconv.Itoa(id))
		}
	}
	for id, m := range s.in {
		if m != nil {
			keys = append(keys, "i."+strconv.Itoa(id))
		}
	}
	for k := range s.other {
		keys = append(keys, k)
	}
	return keys
}

func (s *idStore) Del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.slot(key); p != nil {
		*p = nil
		return
	}
	delete(s.other, key)
}

func (s *idStore) Close() { s.Reset() }

func (s *idStore) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.out[:])
	clear(s.in[:])
	clear(s.other)
}
