package ingest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

var (
	benchJSON   = []byte(`{"temperature": 81.5, "humidity": 40.2, "device": "pump1", "ok": true, "ts": "2026-01-05T10:00:00Z"}`)
	benchJSONms = []byte(`{"temperature": 81.5, "humidity": 40.2, "device": "pump1", "ok": true, "ts": 1767607200123}`)
	benchLP     = []byte("weather,site=roof temp=21.5,hum=40i,ok=true 1767607200000000000")
)

func benchDecode(b *testing.B, f Format, payload []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := Decode(f, payload, "", recv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJSON(b *testing.B)       { benchDecode(b, JSON, benchJSON) }
func BenchmarkDecodeJSONUnixMs(b *testing.B) { benchDecode(b, JSON, benchJSONms) }

// BenchmarkDecodeJSONStd is the encoding/json path alone, for the ratio
// against the one-pass way (BenchmarkDecodeJSON) in one run.
// BenchmarkDecoder: the engine's way, one Decoder reused.
func BenchmarkDecoder(b *testing.B) {
	d := NewDecoder()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(JSON, benchJSONms, "", recv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJSONStd(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchJSON)))
	for b.Loop() {
		if _, err := decodeJSONStd(benchJSON, "", recv); err != nil {
			b.Fatal(err)
		}
	}
}
func BenchmarkDecodeAutoJSON(b *testing.B) { benchDecode(b, Auto, benchJSON) }
func BenchmarkDecodeInflux(b *testing.B)   { benchDecode(b, Influx, benchLP) }
func BenchmarkDecodeValue(b *testing.B)    { benchDecode(b, Auto, []byte("21.5")) }

func BenchmarkMatch(b *testing.B) {
	for _, bc := range []struct{ name, filter, topic string }{
		{"plain", "sensors/+/temperature", "sensors/pump1/temperature"},
		{"plain_miss", "sensors/+/temperature", "sensors/pump1/humidity"},
		{"captures", "sensors/{device}/{kind}", "sensors/pump1/temperature"},
	} {
		f := mustFilter(b, bc.filter)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Match(bc.topic)
			}
		})
	}
}

func BenchmarkDedupeSeen(b *testing.B) {
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = fmt.Sprint("evt-", i)
	}
	d := NewDedupe(time.Minute, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Seen(ids[i%len(ids)], t0.Add(time.Duration(i)*time.Millisecond))
		i++
	}
}

// BenchmarkUnmarshalBaseline is the obvious json.Unmarshal into a
// map[string]any on benchJSON, for comparison with BenchmarkDecodeJSON,
// which unmarshals into an interface instead.
func BenchmarkUnmarshalBaseline(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(benchJSON, &m); err != nil {
			b.Fatal(err)
		}
	}
}
