package ui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-gw/vigil/event"
)

type devicesResp struct {
	Devices []Device
}

type seriesResp struct {
	Key    string
	Points []Point
}

func TestDevices(t *testing.T) {
	s := newTestServer(t, "", newMemSource())
	fields := map[string]any{"temperature": 70.5, "status": "ok", "on": true, "nested": map[string]any{"a": 1.0},
		"list": []any{1.0}, "topic": "sensors/pump-01/temperature", "nan": math.NaN(), "ts": 1767607200.0}
	s.PublishReading("pump-01", "sensors/pump-01/temperature", t0, fields)
	fields["temperature"] = 99.0 // the caller may reuse its map: the server kept a copy
	s.PublishReading("pump-02", "sensors/pump-02/temperature", t0, map[string]any{"temperature": 60})
	// Out of order: an older reading does not replace the latest values.
	s.PublishReading("pump-02", "sensors/pump-02/temperature", t0.Add(-time.Minute), map[string]any{"temperature": 1})

	w := do(t, s, "GET", "/api/devices", nil)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	got := decode[devicesResp](t, w)
	if len(got.Devices) != 2 || got.Devices[0].Key != "pump-01" || got.Devices[1].Key != "pump-02" {
		t.Fatalf("devices: %+v", got.Devices)
	}
	d := got.Devices[0]
	want := map[string]any{"temperature": 70.5, "status": "ok", "on": true, "nan": nil, "ts": 1767607200.0}
	if len(d.Values) != len(want) {
		t.Errorf("values %v, want %v", d.Values, want)
	}
	for k, v := range want {
		if got, ok := d.Values[k]; !ok || got != v {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
	if d.Topic != "sensors/pump-01/temperature" || !d.LastSeen.Equal(t0) {
		t.Errorf("device: %+v", d)
	}
	if v := got.Devices[1].Values["temperature"]; v != 60.0 {
		t.Errorf("pump-02 temperature %v, want 60 (the older reading must not win)", v)
	}

	// The chart holds numeric fields only, never the timestamp.
	sr := decode[seriesResp](t, do(t, s, "GET", "/api/devices/pump-01/series", nil))
	if len(sr.Points) != 1 || sr.Points[0].Field != "temperature" || sr.Points[0].Value != 70.5 {
		t.Errorf("series: %+v", sr.Points)
	}
}

func TestSeries(t *testing.T) {
	s := newTestServer(t, "", newMemSource())
	key := "sensors/pump-01/temperature" // the default rule key is the topic: it has slashes
	at := func(d time.Duration, v float64) {
		s.PublishReading(key, key, t0.Add(d), map[string]any{"temperature": v, "humidity": v / 2})
	}
	at(0, 10)
	at(time.Second, 11)   // coalesced into the first point: its newest value …
	at(2*time.Second, 40) // … and a spike between them, kept as the step's max
	at(3*time.Second, 11)
	at(6*time.Second, 12)
	at(12*time.Second, 13)
	at(4*time.Second, 0) // out of order: ignored

	tests := []struct {
		query string
		want  []Point
	}{
		{"", []Point{
			{t0, "humidity", 5.5, 5, 20}, {t0.Add(6 * time.Second), "humidity", 6, 6, 6}, {t0.Add(12 * time.Second), "humidity", 6.5, 6.5, 6.5},
			{t0, "temperature", 11, 10, 40}, {t0.Add(6 * time.Second), "temperature", 12, 12, 12}, {t0.Add(12 * time.Second), "temperature", 13, 13, 13},
		}},
		{"?since=2026-01-05T10:00:06Z", []Point{
			{t0.Add(6 * time.Second), "humidity", 6, 6, 6}, {t0.Add(12 * time.Second), "humidity", 6.5, 6.5, 6.5},
			{t0.Add(6 * time.Second), "temperature", 12, 12, 12}, {t0.Add(12 * time.Second), "temperature", 13, 13, 13},
		}},
		{"?since=2026-01-05T10:00:13Z", []Point{}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := do(t, s, "GET", "/api/devices/sensors%2Fpump-01%2Ftemperature/series"+tt.query, nil)
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			got := decode[seriesResp](t, w)
			if got.Key != key {
				t.Errorf("key %q", got.Key)
			}
			if fmt.Sprint(got.Points) != fmt.Sprint(tt.want) {
				t.Errorf("points\n got %v\nwant %v", got.Points, tt.want)
			}
		})
	}
	if w := do(t, s, "GET", "/api/devices/pump-09/series", nil); w.Code != 404 {
		t.Errorf("unknown device: %d", w.Code)
	}
	if w := do(t, s, "GET", "/api/devices/"+"x/series?since=soon", nil); w.Code != 400 {
		t.Errorf("bad since: %d", w.Code)
	}
}

func TestSeriesRingWraps(t *testing.T) {
	l := newLive(10)
	n := seriesLen + 7
	for i := range n {
		l.publishReading("k", "t", t0.Add(time.Duration(i)*seriesStep), t0, map[string]any{"v": float64(i)})
	}
	pts, ok := l.series("k", time.Time{})
	if !ok || len(pts) != seriesLen {
		t.Fatalf("%d points, want %d", len(pts), seriesLen)
	}
	for i, p := range pts {
		if want := float64(i + 7); p.Value != want || !p.Time.Equal(t0.Add(time.Duration(i+7)*seriesStep)) {
			t.Fatalf("point %d = %+v, want value %v", i, p, want)
		}
	}
	// Coalescing still replaces the newest point after the wrap.
	l.publishReading("k", "t", t0.Add(time.Duration(n-1)*seriesStep+time.Second), t0, map[string]any{"v": -1.0})
	pts, _ = l.series("k", time.Time{})
	if last := pts[len(pts)-1]; last.Value != -1 || len(pts) != seriesLen {
		t.Fatalf("last point %+v of %d", last, len(pts))
	}
}

func TestMaxDevicesForgetsLeastRecent(t *testing.T) {
	now := t0
	s, err := New(Options{Listen: "127.0.0.1:0", Source: newMemSource(), Logger: quietLogger(), MaxDevices: 2,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"a", "b", "a", "c"} { // b is now the least recently seen
		now = now.Add(time.Second)
		s.PublishReading(k, "t/"+k, t0, map[string]any{"v": 1})
	}
	var keys []string
	for _, d := range s.live.devicesList() {
		keys = append(keys, d.Key)
	}
	if strings.Join(keys, ",") != "a,c" {
		t.Fatalf("devices %v, want a,c", keys)
	}
}

func TestAlertRing(t *testing.T) {
	l := newLive(10)
	for i := range alertRing + 5 {
		l.publishAlert(event.Alert{Rule: "r", Key: fmt.Sprint(i)})
	}
	tests := []struct {
		after     uint64
		wantN     int
		wantFirst string
		wantLost  bool
	}{
		{alertRing + 5, 0, "", false},
		{alertRing + 3, 2, fmt.Sprint(alertRing + 3), false},
		{5, alertRing, "5", false},
		{1, alertRing, "5", true},
		{1 << 40, 0, "", false}, // an id from an earlier process
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.after), func(t *testing.T) {
			out, newest, lost, _ := l.alertsAfter(tt.after)
			if len(out) != tt.wantN || lost != tt.wantLost || newest != alertRing+5 {
				t.Fatalf("n=%d lost=%v newest=%d", len(out), lost, newest)
			}
			if tt.wantN > 0 && out[0].alert.Key != tt.wantFirst {
				t.Errorf("first %q, want %q", out[0].alert.Key, tt.wantFirst)
			}
		})
	}
	if r := l.recentAlerts(3); len(r) != 3 || r[0].alert.Key != fmt.Sprint(alertRing+4) {
		t.Errorf("recent: %+v", r)
	}
}

// sseClient reads frames from a live feed.
type sseClient struct {
	t  *testing.T
	sc *bufio.Scanner
}

type frame struct {
	event, id, data string
}

func (c *sseClient) next() frame {
	c.t.Helper()
	var f frame
	for c.sc.Scan() {
		line := c.sc.Text()
		if line == "" {
			if f.event != "" || f.data != "" {
				return f
			}
			continue
		}
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "event":
			f.event = v
		case "id":
			f.id = v
		case "data":
			f.data = v
		}
	}
	c.t.Fatalf("stream ended: %v", c.sc.Err())
	return f
}

// until skips frames until one named ev.
func (c *sseClient) until(ev string) frame {
	c.t.Helper()
	for {
		if f := c.next(); f.event == ev {
			return f
		}
	}
}

func connect(t *testing.T, s *Server, query string, hdr http.Header) *sseClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Addr()+"/api/events"+query, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseClient{t: t, sc: bufio.NewScanner(resp.Body)}
}

func runServer(t *testing.T, s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestSSEAlertAndReading(t *testing.T) {
	s := newTestServer(t, secret, newMemSource())
	runServer(t, s)
	s.PublishAlert(event.Alert{ID: "old", Rule: "hot_motor"}) // before the client: not replayed
	c := connect(t, s, "?access_token="+secret, nil)

	st := c.next()
	if st.event != "status" || !strings.Contains(st.data, `"events_total":1180`) {
		t.Fatalf("first frame %+v, want the status", st)
	}
	a := event.Alert{ID: "3f9c", Rule: "hot_motor", Key: "pump-03", State: event.Firing, Severity: "critical",
		Time: t0, Message: "pump-03 at 91 °C", Values: map[string]any{"temperature": 91.0, "score": math.Inf(1)}}
	s.PublishAlert(a)
	f := c.until("alert")
	var got map[string]any
	if err := json.Unmarshal([]byte(f.data), &got); err != nil {
		t.Fatal(err)
	}
	if got["id"] != "3f9c" || got["rule"] != "hot_motor" || got["key"] != "pump-03" || got["state"] != "firing" ||
		got["severity"] != "critical" || got["message"] != "pump-03 at 91 °C" || got["time"] != "2026-01-05T10:00:00Z" {
		t.Errorf("alert frame %s", f.data)
	}
	if vals := got["values"].(map[string]any); vals["temperature"] != 91.0 || vals["score"] != nil {
		t.Errorf("values %v: Inf must arrive as null", vals)
	}
	if f.id != "2" {
		t.Errorf("alert id %q, want the live sequence 2", f.id)
	}

	s.PublishReading("pump-03", "sensors/pump-03/temperature", t0, map[string]any{"temperature": 91.0})
	r := c.until("reading")
	if !strings.Contains(r.data, `"key":"pump-03"`) || !strings.Contains(r.data, `"temperature":91`) {
		t.Errorf("reading frame %s", r.data)
	}
}

func TestSSELastEventID(t *testing.T) {
	s := newTestServer(t, "", newMemSource())
	runServer(t, s)
	for _, id := range []string{"a1", "a2", "a3"} {
		s.PublishAlert(event.Alert{ID: id, Rule: "r"})
	}
	c := connect(t, s, "", http.Header{"Last-Event-Id": {"1"}})
	for _, want := range []string{"a2", "a3"} {
		if f := c.until("alert"); !strings.Contains(f.data, `"id":"`+want+`"`) {
			t.Fatalf("resumed alert %s, want %s", f.data, want)
		}
	}
}

// flushRecorder is a ResponseWriter an SSE handler can stream into while
// the test reads what it wrote.
type flushRecorder struct {
	mu  sync.Mutex
	hdr http.Header
	buf bytes.Buffer
}

func (f *flushRecorder) Header() http.Header { return f.hdr }
func (f *flushRecorder) WriteHeader(int)     {}
func (f *flushRecorder) Flush()              {}
func (f *flushRecorder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.Write(p)
}
func (f *flushRecorder) take() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.buf.String()
	f.buf.Reset()
	return s
}

// TestSSETicks checks the pacing with a fake clock: status every 2 s, each
// device at most once a second however often it reports.
func TestSSETicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Server{o: Options{Source: newMemSource(), Now: func() time.Time { return t0 }, Logger: quietLogger()}, live: newLive(10)}
		ctx, cancel := context.WithCancel(t.Context())
		req := httptest.NewRequest("GET", "/api/events", nil).WithContext(ctx)
		w := &flushRecorder{hdr: http.Header{}}
		done := make(chan struct{})
		go func() { s.handleEvents(w, req); close(done) }()
		synctest.Wait()
		if got := w.take(); strings.Count(got, "event: status") != 1 || !strings.HasPrefix(got, "retry: 3000") {
			t.Fatalf("first frame %q", got)
		}

		for i := range 50 { // a chatty device: 50 readings within one tick
			s.PublishReading("pump-01", "t", t0.Add(time.Duration(i)*time.Millisecond), map[string]any{"v": float64(i)})
		}
		time.Sleep(readingTick)
		synctest.Wait()
		got := w.take()
		if n := strings.Count(got, "event: reading"); n != 1 || !strings.Contains(got, `"v":49`) {
			t.Fatalf("after one tick: %d readings in %q, want one with the newest value", n, got)
		}
		time.Sleep(readingTick)
		synctest.Wait()
		if got := w.take(); !strings.Contains(got, "event: status") || strings.Contains(got, "event: reading") {
			t.Fatalf("second tick %q: want a status and no unchanged reading", got)
		}

		cancel()
		<-done
	})
}

// TestSSEResync: a client that comes back further behind than the alert
// ring holds is told to refetch, then gets what the ring still has.
func TestSSEResync(t *testing.T) {
	s := newTestServer(t, "", newMemSource())
	for i := range alertRing + 5 {
		s.PublishAlert(event.Alert{ID: fmt.Sprint("a", i+1), Rule: "r"})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the handler writes its first batch, then sees the client gone
	req := httptest.NewRequest("GET", "/api/events", nil).WithContext(ctx)
	req.Header.Set("Last-Event-ID", "1")
	w := &flushRecorder{hdr: http.Header{}}
	s.handleEvents(w, req)
	got := w.take()
	if !strings.Contains(got, "event: resync") {
		t.Fatal("no resync")
	}
	if n := strings.Count(got, "event: alert"); n != alertRing {
		t.Errorf("%d alerts after the resync, want the ring's %d", n, alertRing)
	}
	if !strings.Contains(got, `"id":"a6"`) || strings.Contains(got, `"id":"a5"`) {
		t.Error("want the ring's oldest alert a6 first and nothing older")
	}
}

func BenchmarkPublishReading(b *testing.B) {
	l := newLive(1000)
	vals := map[string]any{"temperature": 21.5, "humidity": 40.0, "status": "ok", "ts": 1767607200.0}
	keys := make([]string, 500)
	for i := range keys {
		keys[i] = fmt.Sprintf("pump-%03d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.publishReading(keys[i%len(keys)], "sensors/x", t0.Add(time.Duration(i)*time.Millisecond), t0, vals)
	}
}

func BenchmarkPublishAlert(b *testing.B) {
	l := newLive(10)
	a := event.Alert{ID: "x", Rule: "r", Key: "k", State: event.Firing, Severity: "warning", Time: t0}
	b.ReportAllocs()
	for b.Loop() {
		l.publishAlert(a)
	}
}

func BenchmarkStatusJSON(b *testing.B) {
	s := &Server{o: Options{Source: newMemSource(), Now: func() time.Time { return t0 }}, live: newLive(10)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(s.statusView()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNumberAndJSONSafe(t *testing.T) {
	tests := []struct {
		in   any
		want float64
		ok   bool
	}{
		{21.5, 21.5, true}, {float32(2.5), 2.5, true}, {7, 7, true}, {int64(-3), -3, true}, {int32(4), 4, true},
		{uint64(9), 9, true}, {uint32(1), 1, true}, {uint(2), 2, true},
		{math.NaN(), 0, false}, {math.Inf(-1), 0, false}, {"21.5", 0, false}, {true, 0, false}, {nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T(%v)", tt.in, tt.in), func(t *testing.T) {
			got, ok := number(tt.in)
			if ok != tt.ok || ok && got != tt.want {
				t.Fatalf("number = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	in := map[string]any{"a": math.NaN(), "b": float32(math.Inf(1)), "c": []any{1.0, math.Inf(-1)},
		"d": map[string]any{"e": math.NaN(), "f": "x"}, "g": 2.0}
	data, err := json.Marshal(jsonSafe(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":null,"b":null,"c":[1,null],"d":{"e":null,"f":"x"},"g":2}`; string(data) != want {
		t.Fatalf("got %s, want %s", data, want)
	}
	for k, want := range map[string]bool{"ts": true, "TS": true, "time": true, "Timestamp": true, "temp": false, "t": false, "timestamps": false} {
		if isTimeField(k) != want {
			t.Errorf("isTimeField(%q) != %v", k, want)
		}
	}
}

// TestMaxDevicesFleetLargerThanBound: a fleet larger than the bound, each
// reading a new device: the table keeps the newest ones, a device that
// takes a forgotten one's place shows only its own values and series, and
// forgetting needs no scan (BenchmarkPublishReadingFullTable).
func TestMaxDevicesFleetLargerThanBound(t *testing.T) {
	l := newLive(3)
	for i := range 10 {
		k := fmt.Sprint("d", i)
		l.publishReading(k, "t/"+k, t0.Add(time.Duration(i)*time.Second), t0, map[string]any{k: float64(i)})
	}
	var keys []string
	for _, d := range l.devicesList() {
		keys = append(keys, d.Key)
		if len(d.Values) != 1 || d.Values[d.Key] == nil {
			t.Errorf("device %s values %v", d.Key, d.Values)
		}
		pts, ok := l.series(d.Key, time.Time{})
		if !ok || len(pts) != 1 {
			t.Errorf("device %s series %v", d.Key, pts)
		}
	}
	if strings.Join(keys, ",") != "d7,d8,d9" || l.forgotten != 7 || len(l.devices) != 3 {
		t.Fatalf("devices %v, forgotten %d", keys, l.forgotten)
	}
	// A reading of the oldest makes it the newest.
	l.publishReading("d7", "t/d7", t0.Add(time.Hour), t0, map[string]any{"x": 1.0})
	l.publishReading("n", "t/n", t0.Add(time.Hour), t0, map[string]any{"x": 1.0})
	keys = keys[:0]
	for _, d := range l.devicesList() {
		keys = append(keys, d.Key)
	}
	if strings.Join(keys, ",") != "d7,d9,n" {
		t.Fatalf("devices %v, want d7,d9,n", keys)
	}
}

// BenchmarkPublishReadingFullTable: 10,000 devices through the UI's table
// of 1,000, as a large fleet does.
func BenchmarkPublishReadingFullTable(b *testing.B) {
	l := newLive(1000)
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprint("dev-", i)
	}
	vals := map[string]any{"temperature": 21.5}
	for i := 0; b.Loop(); i++ {
		l.publishReading(keys[i%len(keys)], "t", t0.Add(time.Duration(i)*time.Millisecond), t0, vals)
	}
}

// TestDeviceValuesReplaced: a device's values are those of its latest
// reading only: a field the new reading lacks, or now carries as a nested
// value, is gone; the others take the new values.
func TestDeviceValuesReplaced(t *testing.T) {
	l := newLive(10)
	l.publishReading("d", "t", t0, t0, map[string]any{"a": 1.0, "b": "x", "c": true, "e": 5.0})
	l.publishReading("d", "t", t0.Add(time.Second), t0, map[string]any{"a": 2.0, "c": map[string]any{"n": 1.0}, "e": 5.0, "f": "new", "topic": "t"})
	got := l.devices["d"].view().Values
	want := map[string]any{"a": 2.0, "e": 5.0, "f": "new"}
	if len(got) != len(want) {
		t.Fatalf("values %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// Same fields again: nothing deleted, values updated.
	l.publishReading("d", "t", t0.Add(2*time.Second), t0, map[string]any{"a": 3.0, "e": 6.0, "f": "newer"})
	if got := l.devices["d"].view().Values; len(got) != 3 || got["a"] != 3.0 || got["e"] != 6.0 || got["f"] != "newer" {
		t.Fatalf("values %v", got)
	}
}
