package ingest_test

import (
	"fmt"
	"time"

	"github.com/vigil-gw/vigil/ingest"
)

func ExampleDecode() {
	recv := time.Date(2026, 1, 5, 10, 0, 1, 0, time.UTC)
	evs, err := ingest.Decode(ingest.Auto, []byte(`{"temperature": 81.5, "ts": 1767607200}`), "", recv)
	if err != nil {
		panic(err)
	}
	fmt.Println(evs[0].Fields["temperature"], evs[0].Time)

	_, err = ingest.Decode(ingest.Auto, []byte(`{"ts": "yesterday"}`), "", recv)
	fmt.Println(err)
	// Output:
	// 81.5 2026-01-05 10:00:00 +0000 UTC
	// time field "ts": cannot parse "yesterday"
}

func ExampleFilter_Match() {
	f, err := ingest.ParseFilter("sensors/{device}/#")
	if err != nil {
		panic(err)
	}
	caps, ok := f.Match("sensors/pump1/temperature")
	fmt.Println(ok, caps, f.MQTT())

	_, err = ingest.ParseFilter("sensors/#/temperature")
	fmt.Println(err)
	// Output:
	// true [{device pump1}] sensors/+/#
	// topic filter "sensors/#/temperature": level 2 "#": # must be the last level
}
