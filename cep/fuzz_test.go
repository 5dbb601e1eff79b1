package cep

import (
	"testing"
	"time"
)

// FuzzRestore feeds corrupt snapshots to both operators: Restore must
// return an error or leave an operator that keeps working, never panic.
func FuzzRestore(f *testing.F) {
	p, _ := NewPattern(overdueIgnored())
	drive(p, []in{ev(0, "PaymentOverdue"), ev(hour, "ReminderSent"), ev(2*hour, "PaymentOverdue")}, 0, false)
	ps, _ := p.Snapshot()
	a, _ := NewAbsent(AbsentSpec{After: 5 * minute})
	drive(a, []in{ev(0, "r").on("a"), ev(20*minute, "r").on("b"), ev(19*minute, "r").on("c")}, 2*minute, false)
	as, _ := a.Snapshot()
	f.Add(ps)
	f.Add(as)
	f.Add([]byte{})
	f.Add([]byte{1, 3, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _ := NewPattern(overdueIgnored())
		if p.Restore(b) == nil {
			drive(p, []in{ev(3*hour, "ReminderSent"), ev(300*hour, "PaymentReceived")}, time.Hour, true)
			p.Stats()
		}
		a, _ := NewAbsent(AbsentSpec{After: 5 * minute})
		if a.Restore(b) == nil {
			drive(a, []in{ev(3*hour, "r").on("a"), ev(300*hour, "r").on("z")}, time.Hour, true)
			a.Stats()
		}
	})
}

func TestSnapshotRoundTrip(t *testing.T) {
	p, _ := NewPattern(overdueIgnored())
	drive(p, []in{ev(0, "PaymentOverdue"), ev(hour, "ReminderSent"), ev(2*hour, "PaymentOverdue").on("b")}, 0, false)
	b, _ := p.Snapshot()
	q, _ := NewPattern(overdueIgnored())
	if err := q.Restore(b); err != nil {
		t.Fatal(err)
	}
	if q.Stats() != p.Stats() {
		t.Fatalf("stats %+v after restore, want %+v", q.Stats(), p.Stats())
	}
	b2, _ := q.Snapshot()
	if string(b) != string(b2) {
		t.Fatal("snapshot of a restored operator differs")
	}
	other, _ := NewPattern(duplicatePayment())
	if err := other.Restore(b); err == nil {
		t.Fatal("restored a snapshot of a pattern with another number of steps")
	}
	if err := q.Restore(append([]byte{9}, b[1:]...)); err == nil {
		t.Fatal("accepted an unknown version")
	}
	if err := q.Restore(b[:len(b)-1]); err == nil {
		t.Fatal("accepted a truncated snapshot")
	}
}
