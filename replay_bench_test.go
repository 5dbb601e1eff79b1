package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/engine"
	"github.com/vigil-gw/vigil/internal/cputime"
	"github.com/vigil-gw/vigil/rules"
)

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
	src, err := os.ReadFile("engine/testdata/stateless10.yaml")
	if err != nil {
		b.Fatal(err)
	}
	set, err := rules.Parse([]string{"stateless10.yaml"}, map[string][]byte{"stateless10.yaml": src})
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
		cpu0 := cputime.Now()
		s, err := replayAll(context.Background(), eng, bytes.NewReader(in.Bytes()), io.Discard)
		cpu += cputime.Now() - cpu0
		if err != nil || s.lines != lines || s.alerts == 0 {
			b.Fatalf("replay: %v, %d lines, %d alerts", err, s.lines, s.alerts)
		}
	}
	b.ReportMetric(float64(b.N*lines)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(b.N*lines)/b.Elapsed().Seconds(), "events/s")
}

// TestReadLine: lines that fit the reader's buffer come as they stand
// there, longer ones are copied whole, and one over maxLine is reported.
func TestReadLine(t *testing.T) {
	lines := []string{"", "short", strings.Repeat("a", 64<<10-1), strings.Repeat("b", 64<<10), strings.Repeat("c", 200<<10),
		"x\r", strings.Repeat("d", maxLine), strings.Repeat("e", maxLine+1), "after", strings.Repeat("f", 70<<10)}
	for _, last := range []string{"\n", ""} {
		in := strings.Join(lines, "\n") + last
		r := bufio.NewReaderSize(strings.NewReader(in), 64<<10)
		var buf []byte
		for i, want := range lines {
			got, tooLong, err := readLine(r, &buf)
			if err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
			if wantLong := len(want) > maxLine; tooLong != wantLong || !tooLong && string(got) != strings.TrimSuffix(want, "\r") {
				t.Fatalf("line %d: %d bytes, too long %v; want %d bytes, %v", i, len(got), tooLong, len(want), wantLong)
			}
		}
		if _, _, err := readLine(r, &buf); err != io.EOF {
			t.Fatalf("after the last line: %v", err)
		}
	}
}
