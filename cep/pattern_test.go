package cep

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/event"
)

const (
	minute = time.Minute
	hour   = time.Hour
)

// The seed cases of issue #5, as CONTRACT.md writes them.
func overdueIgnored() PatternSpec {
	return PatternSpec{Steps: []Step{
		{Alias: "overdue", Where: typ("PaymentOverdue")},
		{Alias: "reminder", Where: typ("ReminderSent"), Within: 24 * hour},
		{Not: true, Where: typ("PaymentReceived"), Within: 48 * hour},
	}}
}

func duplicatePayment() PatternSpec {
	return PatternSpec{Steps: []Step{
		{Alias: "first", Where: typ("PaymentReceived")},
		{Alias: "again", Within: 10 * minute, Where: func(ev *event.Event, b []*event.Event) (bool, error) {
			return ev.Fields["type"] == "PaymentReceived" && ev.Fields["amount"] == b[0].Fields["amount"], nil
		}},
	}}
}

// cardDeclined: the rule's where (declined abroad) has already filtered.
func cardDeclined() PatternSpec {
	return PatternSpec{Steps: []Step{{Alias: "fails", Times: 3, Within: hour}}}
}

func TestPatternSeeds(t *testing.T) {
	pay := func(at time.Duration, amount float64) in { return ev(at, "PaymentReceived", "amount", amount) }
	dec := func(at time.Duration) in { return ev(at, "declined") }
	tests := []struct {
		name string
		spec PatternSpec
		ins  []in
		want []string
	}{
		{"overdue: reminder, no payment for 48h fires at the deadline", overdueIgnored(), []in{
			ev(0, "PaymentOverdue"), ev(10*hour, "ReminderSent"), ev(70*hour, "Other"),
		}, []string{"k firing +58h0m0s ev2"}},
		{"overdue: payment one minute before the 48h passes", overdueIgnored(), []in{
			ev(0, "PaymentOverdue"), ev(10*hour, "ReminderSent"), pay(58*hour-minute, 10), ev(70*hour, "Other"),
		}, nil},
		{"overdue: payment at exactly 48h still counts (within is inclusive)", overdueIgnored(), []in{
			ev(0, "PaymentOverdue"), ev(10*hour, "ReminderSent"), pay(58*hour, 10), ev(70*hour, "Other"),
		}, nil},
		{"overdue: payment one minute too late", overdueIgnored(), []in{
			ev(0, "PaymentOverdue"), ev(10*hour, "ReminderSent"), pay(58*hour+minute, 10),
		}, []string{"k firing +58h0m0s ev2"}},
		{"overdue: reminder after 25 hours", overdueIgnored(), []in{
			ev(0, "PaymentOverdue"), ev(25*hour, "ReminderSent"), ev(100*hour, "Other"),
		}, nil},
		{"overdue: reminder at exactly 24h", overdueIgnored(), []in{
			ev(0, "PaymentOverdue"), ev(24*hour, "ReminderSent"), ev(100*hour, "Other"),
		}, []string{"k firing +72h0m0s ev2"}},
		{"overdue: deadline pending at end of input fires on Flush", overdueIgnored(), []in{
			ev(0, "PaymentOverdue"), ev(1*hour, "ReminderSent"),
		}, []string{"k firing +49h0m0s ev2"}},
		{"overdue: two overdues share one reminder: the oldest wins, once", overdueIgnored(), []in{
			ev(0, "PaymentOverdue"), ev(1*hour, "PaymentOverdue"), ev(2*hour, "ReminderSent"),
		}, []string{"k firing +50h0m0s ev3"}},
		{"overdue: payment before the reminder does not matter", overdueIgnored(), []in{
			ev(0, "PaymentOverdue"), pay(1*hour, 5), ev(2*hour, "ReminderSent"),
		}, []string{"k firing +50h0m0s ev3"}},
		{"overdue: keys do not mix", overdueIgnored(), []in{
			ev(0, "PaymentOverdue").on("a"), ev(1*hour, "ReminderSent").on("b"), pay(2*hour, 5).on("a"),
		}, nil},

		{"duplicate: same amount within 10m", duplicatePayment(), []in{pay(0, 100), pay(5*minute, 100)},
			[]string{"k firing +5m0s ev2"}},
		{"duplicate: at exactly 10m", duplicatePayment(), []in{pay(0, 100), pay(10*minute, 100)},
			[]string{"k firing +10m0s ev2"}},
		{"duplicate: one minute too late", duplicatePayment(), []in{pay(0, 100), pay(11*minute, 100)}, nil},
		{"duplicate: too late for the first, in time for the second", duplicatePayment(), []in{
			pay(0, 100), pay(11*minute, 100), pay(15*minute, 100)}, []string{"k firing +15m0s ev3"}},
		{"duplicate: other amount in between is skipped", duplicatePayment(), []in{
			pay(0, 100), pay(1*minute, 50), ev(2*minute, "Refund"), pay(3*minute, 100)}, []string{"k firing +3m0s ev4"}},
		{"duplicate: different amounts", duplicatePayment(), []in{pay(0, 100), pay(1*minute, 101)}, nil},
		{"duplicate: three equal payments make one match, four make two", duplicatePayment(), []in{
			pay(0, 7), pay(1*minute, 7), pay(2*minute, 7), pay(20*minute, 7), pay(21*minute, 7), pay(22*minute, 7), pay(23*minute, 7)},
			[]string{"k firing +1m0s ev2", "k firing +21m0s ev5", "k firing +23m0s ev7"}},
		{"duplicate: interleaved amounts each find their twin", duplicatePayment(), []in{
			pay(0, 1), pay(1*minute, 2), pay(2*minute, 2), pay(3*minute, 1)},
			[]string{"k firing +2m0s ev3", "k firing +3m0s ev4"}},

		{"card: three declines in an hour", cardDeclined(), []in{dec(0), dec(20 * minute), dec(50 * minute)},
			[]string{"k firing +50m0s ev3"}},
		{"card: third at exactly 1h", cardDeclined(), []in{dec(0), dec(30 * minute), dec(hour)},
			[]string{"k firing +1h0m0s ev3"}},
		{"card: two declines then a gap", cardDeclined(), []in{dec(0), dec(10 * minute), dec(hour + time.Second)}, nil},
		{"card: after the gap a new run counts from its own first", cardDeclined(), []in{
			dec(0), dec(10 * minute), dec(2 * hour), dec(2*hour + minute), dec(2*hour + 2*minute)},
			[]string{"k firing +2h2m0s ev5"}},
		{"card: the second and later declines of a run start later runs", cardDeclined(), []in{
			dec(0), dec(50 * minute), dec(70 * minute), dec(80 * minute), dec(90 * minute)},
			[]string{"k firing +1h20m0s ev4"}},
		{"card: six declines fire twice, not four times", cardDeclined(), []in{
			dec(0), dec(1 * minute), dec(2 * minute), dec(3 * minute), dec(4 * minute), dec(5 * minute)},
			[]string{"k firing +2m0s ev3", "k firing +5m0s ev6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPattern(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			eqLines(t, brief(drive(p, tc.ins, 0, true)), tc.want)
			if st := p.Stats(); st.Late != 0 || st.Errors != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestPatternValues(t *testing.T) {
	t.Run("aliases carry their events' fields", func(t *testing.T) {
		p, _ := NewPattern(overdueIgnored())
		rs := drive(p, []in{ev(0, "PaymentOverdue", "n", 1.0), ev(hour, "ReminderSent", "n", 2.0)}, 0, true)
		if len(rs) != 1 {
			t.Fatalf("%d results", len(rs))
		}
		r := rs[0]
		if !reflect.DeepEqual(sortedKeys(r.Values), []string{"overdue", "reminder"}) ||
			r.Values["overdue"].(map[string]any)["n"] != 1.0 || r.Values["reminder"].(map[string]any)["n"] != 2.0 {
			t.Fatalf("values %v", r.Values)
		}
		if r.Event == nil || r.Event.Fields["n"] != 2.0 || r.State != event.Firing || r.Key != "k" {
			t.Fatalf("result %+v", r)
		}
	})
	t.Run("times: the last event and the count", func(t *testing.T) {
		p, _ := NewPattern(cardDeclined())
		rs := drive(p, []in{ev(0, "d", "n", 1.0), ev(minute, "d", "n", 2.0), ev(2*minute, "d", "n", 3.0)}, 0, true)
		if len(rs) != 1 || rs[0].Values["fails"].(map[string]any)["n"] != 3.0 || rs[0].Values["fails_count"] != 3 {
			t.Fatalf("results %+v", rs)
		}
	})
}

func TestPatternMiddleNot(t *testing.T) {
	spec := func(notWithin time.Duration) PatternSpec {
		return PatternSpec{Steps: []Step{
			{Alias: "a", Where: typ("A")},
			{Not: true, Where: typ("B"), Within: notWithin},
			{Alias: "c", Where: typ("C"), Within: hour},
		}}
	}
	tests := []struct {
		name      string
		notWithin time.Duration
		ins       []in
		want      []string
	}{
		{"nothing between", 0, []in{ev(0, "A"), ev(minute, "C")}, []string{"k firing +1m0s ev2"}},
		{"forbidden event between", 0, []in{ev(0, "A"), ev(minute, "B"), ev(2*minute, "C")}, nil},
		{"forbidden event after the match", 0, []in{ev(0, "A"), ev(minute, "C"), ev(2*minute, "B")}, []string{"k firing +1m0s ev2"}},
		{"a new A after the kill matches", 0, []in{ev(0, "A"), ev(minute, "B"), ev(2*minute, "A"), ev(3*minute, "C")},
			[]string{"k firing +3m0s ev4"}},
		{"not window: B inside it kills", 10 * minute, []in{ev(0, "A"), ev(10*minute, "B"), ev(20*minute, "C")}, nil},
		{"not window: B after it is ignored", 10 * minute, []in{ev(0, "A"), ev(11*minute, "B"), ev(20*minute, "C")},
			[]string{"k firing +20m0s ev3"}},
		{"next step's within counts from the step before the not", 0, []in{ev(0, "A"), ev(hour+1, "C")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPattern(spec(tc.notWithin))
			if err != nil {
				t.Fatal(err)
			}
			eqLines(t, brief(drive(p, tc.ins, 0, true)), tc.want)
		})
	}
}

func TestNewPatternValidates(t *testing.T) {
	tests := []struct {
		name  string
		steps []Step
		ok    bool
	}{
		{"one step", []Step{{}}, true},
		{"no steps", nil, false},
		{"first is not", []Step{{Not: true, Within: hour}, {}}, false},
		{"two nots in a row", []Step{{}, {Not: true}, {Not: true, Within: hour}}, false},
		{"trailing not without within", []Step{{}, {Not: true}}, false},
		{"trailing not with within", []Step{{}, {Not: true, Within: hour}}, true},
		{"not with times", []Step{{}, {Not: true, Times: 2, Within: hour}, {}}, false},
		{"negative times", []Step{{Times: -1}}, false},
		{"duplicate alias", []Step{{Alias: "a"}, {Alias: "a"}}, false},
		{"negative within", []Step{{}, {Within: -1}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPattern(PatternSpec{Steps: tc.steps})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestPatternCondErrorCountsAsFalse(t *testing.T) {
	boom := func(ev *event.Event, _ []*event.Event) (bool, error) {
		if ev.Fields["type"] == "bad" {
			return false, errors.New("boom")
		}
		return true, nil
	}
	p, _ := NewPattern(PatternSpec{Steps: []Step{{Where: boom}, {Where: boom}}})
	rs := drive(p, []in{ev(0, "bad"), ev(1, "ok"), ev(2, "bad"), ev(3, "ok")}, 0, true)
	eqLines(t, brief(rs), []string{"k firing +3ns ev4"})
	if st := p.Stats(); st.Errors != 3 {
		t.Fatalf("errors %d, want 3", st.Errors)
	}
}

func TestPatternBounds(t *testing.T) {
	t.Run("partials per key: oldest evicted", func(t *testing.T) {
		spec := duplicatePayment()
		spec.MaxPartials = 3
		p, _ := NewPattern(spec)
		var ins []in
		for i := range 5 {
			ins = append(ins, ev(time.Duration(i)*time.Second, "PaymentReceived", "amount", float64(i)))
		}
		ins = append(ins, ev(10*time.Second, "PaymentReceived", "amount", 0.0)) // its partner was evicted
		ins = append(ins, ev(11*time.Second, "PaymentReceived", "amount", 4.0))
		rs := drive(p, ins, 0, false)
		eqLines(t, brief(rs), []string{"k firing +11s ev7"})
		if st := p.Stats(); st.Evicted != 3 || st.Pending != 2 || st.Keys != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("keys: least recently seen evicted", func(t *testing.T) {
		spec := duplicatePayment()
		spec.MaxKeys = 2
		p, _ := NewPattern(spec)
		rs := drive(p, []in{
			ev(0, "PaymentReceived", "amount", 1.0).on("a"),
			ev(1, "PaymentReceived", "amount", 1.0).on("b"),
			ev(2, "Other").on("a"),                          // a is now more recent than b
			ev(3, "PaymentReceived", "amount", 1.0).on("c"), // evicts b
			ev(4, "PaymentReceived", "amount", 1.0).on("b"), // starts over; evicts a
			ev(5, "PaymentReceived", "amount", 1.0).on("c"),
			ev(6, "PaymentReceived", "amount", 1.0).on("a"), // starts over
		}, 0, false)
		eqLines(t, brief(rs), []string{"c firing +5ns ev6"})
		if st := p.Stats(); st.Evicted != 2 || st.Keys != 2 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("expired partials are dropped and keys forgotten", func(t *testing.T) {
		p, _ := NewPattern(duplicatePayment())
		drive(p, []in{ev(0, "PaymentReceived", "amount", 1.0).on("a"), ev(hour, "x").on("b")}, 0, false)
		if st := p.Stats(); st.Pending != 0 || st.Keys != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("heap stays bounded while partials keep advancing", func(t *testing.T) {
		p, _ := NewPattern(PatternSpec{Steps: []Step{{}, {Times: 1000000, Within: 1000 * hour}}})
		for i := range 20000 {
			p.Add("k", &event.Event{Time: t0.Add(time.Duration(i) * time.Second), Seq: uint64(i)})
			p.Advance(t0.Add(time.Duration(i) * time.Second))
		}
		if len(p.dl) > 4*p.partials+65 {
			t.Fatalf("heap %d entries for %d partials", len(p.dl), p.partials)
		}
	})
}

func TestPatternLateAndOutOfOrder(t *testing.T) {
	pay := func(at time.Duration, amount float64) in { return ev(at, "PaymentReceived", "amount", amount) }
	inOrder := []in{pay(0, 1), pay(1*minute, 2), pay(3*minute, 1), pay(4*minute, 2), ev(10*hour, "x")}
	shuffled := []in{pay(1*minute, 2), pay(0, 1), pay(4*minute, 2), pay(3*minute, 1), ev(10*hour, "x")}
	p1, _ := NewPattern(duplicatePayment())
	want := brief(drive(p1, inOrder, 0, true))
	p2, _ := NewPattern(duplicatePayment())
	got := drive(p2, shuffled, 2*minute, true)
	// Seqs differ between the runs; compare times and keys.
	if len(got) != len(want) || len(want) != 2 {
		t.Fatalf("got %v want %v", brief(got), want)
	}
	for i := range got {
		if !got[i].Time.Equal(t0.Add([]time.Duration{3 * minute, 4 * minute}[i])) {
			t.Fatalf("got %v", brief(got))
		}
	}
	t.Run("late event is counted and dropped", func(t *testing.T) {
		p, _ := NewPattern(duplicatePayment())
		rs := drive(p, []in{pay(10*minute, 1), pay(0, 1)}, 5*minute, true)
		if len(rs) != 0 || p.Stats().Late != 1 {
			t.Fatalf("results %v stats %+v", brief(rs), p.Stats())
		}
	})
}

// In `run` the gateway clock advances closeAt with no events: deadlines
// must fire from Advance alone, once, and an earlier closeAt changes
// nothing.
func TestPatternAdvanceAloneFiresDeadlines(t *testing.T) {
	p, _ := NewPattern(overdueIgnored())
	drive(p, []in{ev(0, "PaymentOverdue"), ev(hour, "ReminderSent")}, 0, false)
	steps := []struct {
		at   time.Duration
		want []string
	}{
		{49 * hour, nil}, // exactly the deadline: not passed yet
		{49*hour + 1, []string{"k firing +49h0m0s ev2"}},
		{50 * hour, nil},
		{10 * hour, nil},
	}
	for _, s := range steps {
		eqLines(t, brief(p.Advance(t0.Add(s.at))), s.want)
	}
	if st := p.Stats(); st.Pending != 0 || st.Keys != 0 {
		t.Fatalf("stats %+v", st)
	}
	if rs := p.Add("k", &event.Event{Time: t0.Add(20 * hour), Seq: 9, Fields: map[string]any{}}); rs != nil || p.Stats().Late != 1 {
		t.Fatalf("event before a closeAt that went backwards was not late: %v %+v", brief(rs), p.Stats())
	}
}
