package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/engine"
	"github.com/vigil-gw/vigil/rules"
)

// stateless10 are the ten stateless rules of the replay target (issue 2),
// the same as engine.BenchmarkStateless10's.
const stateless10 = `
rules:
  - {name: big_abroad, from: "shop/{store}/orders", where: amount > 1000 && country != "UK", key: customer, message: "order {{order}} of {{amount}} to {{country}}"}
  - {name: huge, from: "shop/{store}/orders", where: amount > 5000, key: customer, severity: critical}
  - {name: tiny, from: "shop/{store}/orders", where: amount < 1, key: customer}
  - {name: fr, from: "shop/{store}/orders", where: country == "FR" && amount > 1500, key: store}
  - {name: vip, from: "shop/{store}/orders", where: 'customer in ["c1", "c2", "c3"]', key: customer}
  - {name: express_far, from: "shop/{store}/orders", where: 'express && amount > 500 && country not in ["UK", "IE"]', key: customer, cooldown: 1m}
  - {name: qty, from: "shop/{store}/orders", where: qty >= 50, key: store}
  - {name: s7, from: "shop/s7/orders", where: amount > 100}
  - {name: prefix, from: "shop/{store}/orders", where: order startsWith "x", key: store}
  - {name: unit_price, from: "shop/{store}/orders", where: qty > 0 && amount / qty > 900, key: customer}
`

// BenchmarkReplay is `vigil replay` without the process: recorded lines
// of ~108-byte JSON orders (record parsing, decoding, ten stateless rules,
// alerts written as JSON lines), on one core. The issue-2 target is
// 500,000 events/s.
//
//	go test -run '^$' -bench Replay -benchtime 1x -cpu 1 .
func BenchmarkReplay(b *testing.B) {
	const lines = 200000
	var in bytes.Buffer
	countries := []string{"UK", "FR", "DE", "IE", "US"}
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for i := 0; i < lines; i++ {
		amount := 1 + (i*37)%300
		if i%64 == 0 {
			amount = 1000 + (i*37)%5000
		}
		fmt.Fprintf(&in, `{"topic":"shop/s%d/orders","payload":{"order":"o%d","customer":"c%d","amount":%d.5,"qty":%d,"country":%q,"express":%v,"ts":%d}}`+"\n",
			i%10, i, i%500, amount, i%40, countries[i%len(countries)], i%3 == 0, base.Add(time.Duration(i)*time.Second).UnixMilli())
	}
	set, err := rules.Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(stateless10)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		eng, err := engine.New(set, engine.Options{})
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := cpuTime()
		s, err := replay(context.Background(), eng, bytes.NewReader(in.Bytes()), io.Discard)
		cpu += cpuTime() - cpu0
		if err != nil || s.lines != lines || s.alerts == 0 {
			b.Fatalf("replay: %v, %d lines, %d alerts", err, s.lines, s.alerts)
		}
	}
	b.ReportMetric(float64(b.N*lines)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(b.N*lines)/b.Elapsed().Seconds(), "events/s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
