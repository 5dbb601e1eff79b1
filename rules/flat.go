package rules

import "time"

// Flat is an event as the engine holds it before anyone needs its map: the
// payload's fields in payload order, no name twice, and the variables the engine adds (topic, time, captures),
// which take precedence. Expressions with a fast form read it directly;
// Map builds the map for everything else, once.
type Flat struct {
	Keys []string
	Vals []any
	// The engine's variables: the topic (boxed), the event time and the
	// captures, which override payload fields of the same name.
	Topic     any
	Time      time.Time
	extraKeys []string // set by Push
	extraVals []any
	// extraLens has bit len(name)%64 set for every name in extraKeys: a
	// variable of another length skips their scan.
	extraLens uint64
	m         map[string]any
}

// Reset empties f for the next event, keeping its memory. A map handed
// out by Map stays the receiver's.
func (f *Flat) Reset() {
	f.Keys, f.Vals, f.extraKeys, f.extraVals, f.m, f.Topic, f.Time = f.Keys[:0], f.Vals[:0], f.extraKeys[:0], f.extraVals[:0], nil, nil, time.Time{}
	f.extraLens = 0
}

// Var implements Vars.
func (f *Flat) Var(id *ident) any {
	if f.extraLens&(1<<(len(id.name)%64)) != 0 {
		for i := len(f.extraKeys) - 1; i >= 0; i-- {
			if f.extraKeys[i] == id.name {
				return f.extraVals[i]
			}
		}
	}
	switch id.special {
	case identTopic:
		return f.Topic
	case identTime:
		return f.Time
	}
	// Payloads of one source share a layout: where the name was last time
	// is where it is now, unless a later field repeats it. The key found
	// there last time is the decoder's interned string: compared with
	// itself, == stops at the pointers.
	if h := id.hint; h < len(f.Keys) && f.Keys[h] == id.key {
		return f.Vals[h]
	}
	for i := range f.Keys {
		if f.Keys[i] == id.name {
			id.hint, id.key = i, f.Keys[i]
			return f.Vals[i]
		}
	}
	return nil
}

// Map returns the event's fields as a map, built on first use.
func (f *Flat) Map() map[string]any {
	if f.m != nil {
		return f.m
	}
	m := make(map[string]any, len(f.Keys)+len(f.extraKeys)+2)
	for i, k := range f.Keys {
		m[k] = f.Vals[i]
	}
	m["topic"] = f.Topic
	m["time"] = f.Time
	for i, k := range f.extraKeys {
		m[k] = f.extraVals[i]
	}
	f.m = m
	return m
}

// Push adds a variable that overrides every other of its name until Pop.
func (f *Flat) Push(name string, v any) {
	f.extraKeys = append(f.extraKeys, name)
	f.extraVals = append(f.extraVals, v)
	f.extraLens |= 1 << (len(name) % 64)
	f.m = nil
}

// Pop removes the last n variables Push added.
func (f *Flat) Pop(n int) {
	f.extraKeys = f.extraKeys[:len(f.extraKeys)-n]
	f.extraVals = f.extraVals[:len(f.extraVals)-n]
	f.extraLens = 0
	for _, k := range f.extraKeys {
		f.extraLens |= 1 << (len(k) % 64)
	}
	f.m = nil
}

// Fields returns a new map of the payload's fields and the captures: an
// alert's values (topic and time are not among them).
func (f *Flat) Fields() map[string]any {
	m := make(map[string]any, len(f.Keys)+len(f.extraKeys))
	for i, k := range f.Keys {
		if k != "topic" && k != "time" {
			m[k] = f.Vals[i]
		}
	}
	for i, k := range f.extraKeys {
		if k != "topic" && k != "time" {
			m[k] = f.extraVals[i]
		}
	}
	return m
}
