package main

import (
	"slices"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestIDStore: the store keeps what paho gives it under paho's keys, by
// direction and id, and any other key too; All lists what is held.
func TestIDStore(t *testing.T) {
	s := newIDStore()
	p1 := packets.NewControlPacket(packets.Publish)
	p2 := packets.NewControlPacket(packets.Pubrel)
	p3 := packets.NewControlPacket(packets.Publish)
	s.Put("o.1", p1)
	s.Put("i.1", p2)
	s.Put("o.65535", p3)
	s.Put("x.odd", p1)
	if s.Get("o.1") != p1 || s.Get("i.1") != p2 || s.Get("o.65535") != p3 || s.Get("x.odd") != p1 || s.Get("o.2") != nil {
		t.Fatal("Get after Put")
	}
	all := s.All()
	slices.Sort(all)
	if want := []string{"i.1", "o.1", "o.65535", "x.odd"}; !slices.Equal(all, want) {
		t.Fatalf("All %v, want %v", all, want)
	}
	s.Del("o.1")
	s.Del("x.odd")
	if s.Get("o.1") != nil || s.Get("x.odd") != nil || s.Get("i.1") != p2 {
		t.Fatal("Del")
	}
	for _, bad := range []string{"o.70000", "o.", "o.-1", "q.1", ""} {
		s.Put(bad, p1)
		if s.Get(bad) != p1 {
			t.Fatalf("key %q not kept", bad)
		}
	}
	s.Reset()
	if len(s.All()) != 0 {
		t.Fatalf("after Reset: %v", s.All())
	}
}
