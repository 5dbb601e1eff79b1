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
	ExtraKeys []string
	ExtraVals []any
	m         map[string]any
}

// Reset empties f for the next event, keeping its memory. A map handed
// out by Map stays the receiver's.
func (f *Flat) Reset() {
	f.Keys, f.Vals, f.ExtraKeys, f.ExtraVals, f.m, f.Topic, f.Time = f.Keys[:0], f.Vals[:0], f.ExtraKeys[:0], f.ExtraVals[:0], nil, nil, time.Time{}
}

// Var implements Vars.
func (f *Flat) Var(name string, hint *int) any {
	for i := len(f.ExtraKeys) - 1; i >= 0; i-- {
		if f.ExtraKeys[i] == name {
			return f.ExtraVals[i]
		}
	}
	switch name {
	case "topic":
		return f.Topic
	case "time":
		return f.Time
	}
	// Payloads of one source share a layout: where the name was last time
	// is where it is now, unless a later field repeats it.
	if h := *hint; h < len(f.Keys) && f.Keys[h] == name {
		return f.Vals[h]
	}
	for i := range f.Keys {
		if f.Keys[i] == name {
			*hint = i
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
	m := make(map[string]any, len(f.Keys)+len(f.ExtraKeys)+2)
	for i, k := range f.Keys {
		m[k] = f.Vals[i]
	}
	m["topic"] = f.Topic
	m["time"] = f.Time
	for i, k := range f.ExtraKeys {
		m[k] = f.ExtraVals[i]
	}
	f.m = m
	return m
}

// Push adds a variable that overrides every other of its name until Pop.
func (f *Flat) Push(name string, v any) {
	f.ExtraKeys = append(f.ExtraKeys, name)
	f.ExtraVals = append(f.ExtraVals, v)
	f.m = nil
}

// Pop removes the last n variables Push added.
func (f *Flat) Pop(n int) {
	f.ExtraKeys = f.ExtraKeys[:len(f.ExtraKeys)-n]
	f.ExtraVals = f.ExtraVals[:len(f.ExtraVals)-n]
	f.m = nil
}

// Fields returns a new map of the payload's fields and the captures: an
// alert's values (topic and time are not among them).
func (f *Flat) Fields() map[string]any {
	m := make(map[string]any, len(f.Keys)+len(f.ExtraKeys))
	for i, k := range f.Keys {
		if k != "topic" && k != "time" {
			m[k] = f.Vals[i]
		}
	}
	for i, k := range f.ExtraKeys {
		if k != "topic" && k != "time" {
			m[k] = f.ExtraVals[i]
		}
	}
	return m
}
