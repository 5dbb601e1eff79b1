package ingest

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// decodeInflux reads InfluxDB line protocol, one event per line. An event's
// fields are `measurement`, its tags (strings) and its fields (numbers as
// float64, strings, booleans); on a name clash a field wins over a tag and
// both over the measurement. The line's timestamp (nanoseconds) is the
// event time. A line without one takes timeField's value when timeField is
// set and present among its fields, else recv.
func decodeInflux(payload []byte, timeField string, recv time.Time) ([]Decoded, error) {
	dec := lineprotocol.NewDecoderWithBytes(payload)
	var out []Decoded
	for line := 1; dec.Next(); line++ {
		if line > MaxLines {
			return nil, fmt.Errorf("line protocol: more than %d lines", MaxLines)
		}
		d, err := influxLine(dec, timeField, recv)
		if err != nil {
			var de *lineprotocol.DecodeError
			if errors.As(err, &de) {
				return nil, fmt.Errorf("line protocol: line %d:%d: %v", de.Line, de.Column, de.Err)
			}
			return nil, fmt.Errorf("line protocol: line %d: %w", line, err)
		}
		out = append(out, d)
	}
	if err := dec.Err(); err != nil {
		return nil, fmt.Errorf("line protocol: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("line protocol: no lines")
	}
	return out, nil
}

func influxLine(dec *lineprotocol.Decoder, timeField string, recv time.Time) (Decoded, error) {
	m, err := dec.Measurement()
	if err != nil {
		return Decoded{}, err
	}
	fields := make(map[string]any, 8)
	fields["measurement"] = string(m)
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			return Decoded{}, err
		}
		if k == nil {
			break
		}
		if len(fields) >= MaxFields {
			return Decoded{}, fmt.Errorf("more than %d fields", MaxFields)
		}
		fields[string(k)] = string(v)
	}
	for {
		k, v, err := dec.NextField()
		if err != nil {
			return Decoded{}, err
		}
		if k == nil {
			break
		}
		if len(fields) >= MaxFields {
			return Decoded{}, fmt.Errorf("more than %d fields", MaxFields)
		}
		fields[string(k)] = influxValue(v)
	}
	// TimeBytes, unlike Time, tells a missing timestamp from an explicit 0.
	tb, err := dec.TimeBytes()
	if err != nil {
		return Decoded{}, err
	}
	var t time.Time
	switch {
	case tb != nil:
		ns, err := strconv.ParseInt(string(tb), 10, 64)
		if err != nil {
			return Decoded{}, fmt.Errorf("invalid timestamp %q", clip(string(tb)))
		}
		t = time.Unix(0, ns)
	case timeField != "":
		if t, err = eventTime(fields, timeField, recv); err != nil {
			return Decoded{}, err
		}
	case recv.IsZero():
		return Decoded{}, errNoTime
	default:
		t = recv
	}
	return Decoded{Fields: fields, Time: t.UTC()}, nil
}

func influxValue(v lineprotocol.Value) any {
	switch v.Kind() {
	case lineprotocol.Int:
		return float64(v.IntV())
	case lineprotocol.Uint:
		return float64(v.UintV())
	case lineprotocol.Float:
		return v.FloatV()
	case lineprotocol.String:
		return v.StringV()
	case lineprotocol.Bool:
		return v.BoolV()
	}
	return nil
}
