//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// outDir is where the screenshots go: out/e2e at the repository root, a CI
// artifact (out/ is not committed).
const outDir = "../out/e2e"

// demoRules are the rule names of the bundled example rules.
func demoRules(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../examples/demo-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*- name: ([a-z0-9_]+)`).FindAllSubmatch(b, -1) {
		names[string(m[1])] = true
	}
	if len(names) == 0 {
		t.Fatal("no rule names in examples/demo-rules.yaml")
	}
	return names
}

// startDemo runs `vigil demo` with the UI on a free loopback port and
// returns the URL it prints.
func startDemo(t *testing.T) string {
	url, _, _ := startDemoBroker(t)
	return url
}

// startDemoBroker is startDemo that also returns the demo's broker address
// and when the demo started.
func startDemoBroker(t *testing.T) (url, brokerAddr string, started time.Time) {
	t.Helper()
	out := &logBuf{}
	cmd := exec.Command(vigilBin, "demo", "-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-fault-every", "10s", "-state", t.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = orphanKill()
	started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Error("vigil demo did not stop within 15 s of SIGINT")
		}
		if t.Failed() {
			t.Logf("vigil demo output:\n%s", tail(out.String(), 4000))
		}
	})
	re := regexp.MustCompile(`web UI: (http://127\.0\.0\.1:\d+/)`)
	reBroker := regexp.MustCompile(`broker mqtt://(127\.0\.0\.1:\d+)`)
	eventually(t, 30*time.Second, "vigil demo prints the UI's URL", func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("vigil demo exited: %v\n%s", cmd.ProcessState, out.String())
		default:
		}
		m, b := re.FindStringSubmatch(out.String()), reBroker.FindStringSubmatch(out.String())
		if m != nil && b != nil {
			url, brokerAddr = m[1], b[1]
		}
		return m != nil && b != nil, out.String()
	})
	return url, brokerAddr, started
}

// browser starts a headless Chromium with a fresh profile. The flags keep
// it off the network: the machine's network is closed, and without them
// Chromium keeps trying (updates, sync, QUIC).
func browser(t *testing.T) context.Context {
	t.Helper()
	chrome := tool(t, "VIGIL_CHROMIUM", "chromium", "/usr/bin/chromium")
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser now, on a context without a deadline: its first
	// use decides the browser's lifetime.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}
	return ctx
}

// pageErrors collects uncaught exceptions and console errors of the page.
type pageErrors struct {
	mu   sync.Mutex
	errs []string
}

func (p *pageErrors) listen(ctx context.Context) {
	chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			msg = "console.error:"
			for _, a := range e.Args {
				msg += " " + string(a.Value) + a.Description
			}
		default:
			return
		}
		p.mu.Lock()
		p.errs = append(p.errs, msg)
		p.mu.Unlock()
	})
}

func (p *pageErrors) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// run runs one step with a timeout, failing the test with what it was.
func run[T any](t *testing.T, ctx context.Context, within time.Duration, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, within time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	run(t, ctx, within, what, chromedp.Steps(steps...))
}

// waitJS evaluates expr until it is true. Unlike Poll it survives the page
// navigating meanwhile (a reload destroys Poll's execution context).
func waitJS(t *testing.T, ctx context.Context, within time.Duration, what, expr string) {
	t.Helper()
	eventually(t, within, what, func() (bool, string) {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](expr))
		if err != nil {
			return false, err.Error()
		}
		var state string
		state, _ = chromedp.Run(c, chromedp.Evaluate[string](`JSON.stringify({href: location.href, token: sessionStorage.getItem('vigil.token'), ready: document.readyState, login: document.querySelector('#login') && !document.querySelector('#login').hidden, conn: document.querySelector('#conn') && document.querySelector('#conn').dataset.state})`))
		return ok, state
	})
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := run(t, ctx, 20*time.Second, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(outDir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(p)
	t.Logf("screenshot: %s (%d KB)", abs, len(png)/1024)
}

// number reads a number as the page shows it (1,234 · 21.5 · 0.25).
func number(s string) (float64, error) {
	return strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(s), ",", ""), 64)
}

// alertView is an alert as the page lists it.
type alertView struct {
	Rule, Key, Severity, State, ID, Text string
}

const alertJS = `(() => {
  const e = document.querySelector(%q);
  return e && {Rule: e.dataset.rule || '', Key: e.dataset.key || '', Severity: e.dataset.severity || '',
    State: e.dataset.state || '', ID: e.dataset.id || '', Text: e.textContent};
})()`

// bandView is the first chart that shows a detector alert's band and point.
type bandView struct {
	Device                     string
	Top, Height, Width, PointY float64
}

// bandJS opens each device's chart in turn until one shows a detector's band
// (rect.band) and the point that fired (circle.alert-point.state-firing).
const bandJS = `(() => {
  for (const c of document.querySelectorAll('#devices [data-device]')) {
    c.click();
    const b = document.querySelector('#chart rect.band'), p = document.querySelector('#chart circle.alert-point.state-firing');
    if (b && p && p.dataset.rule === b.dataset.rule) return {Device: c.dataset.device, Top: +b.getAttribute('y'),
      Height: +b.getAttribute('height'), Width: +b.getAttribute('width'), PointY: +p.getAttribute('cy')};
  }
  return false;
})()`

// TestBrowser drives the web UI of the real `vigil demo` in a headless
// Chromium: live values, a simulated fault's alert, the tabs, a device's
// chart with its alert markers; screenshots at desktop and phone width.
func TestBrowser(t *testing.T) {
	names := demoRules(t)
	url, brokerAddr, started := startDemoBroker(t)
	ctx := browser(t)
	errs := &pageErrors{}
	errs.listen(ctx)
	do(t, ctx, 30*time.Second, "open "+url, chromedp.Navigate(url+"#overview"))
	do(t, ctx, 20*time.Second, "the live feed connects", chromedp.WaitVisible(`#conn[data-state="live"]`))

	// A live value: the simulator publishes every second.
	val := run(t, ctx, 30*time.Second, "a device's live temperature", chromedp.Poll[string](`(() => {
  for (const e of document.querySelectorAll('[data-device] [data-field="temperature"] .value'))
    if (e.textContent.trim() && e.textContent.trim() !== '–') return e.textContent.trim();
  return false;
})()`, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if v, err := number(val); err != nil || v < -50 || v > 200 {
		t.Errorf("live temperature %q: not a plausible number", val)
	}
	rate := run(t, ctx, 20*time.Second, "the events rate", chromedp.Poll[string](
		`(() => { const t = document.querySelector('[data-stat="events_rate"] .value').textContent.trim(); return t !== '–' && t; })()`,
		chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if _, err := number(rate); err != nil {
		t.Errorf("events rate %q: not a number", rate)
	}

	// A simulated fault's alert (one every ~10 s; some rules need a window
	// or a silence to pass first).
	a := run(t, ctx, 90*time.Second, "an alert on the overview", chromedp.Poll[alertView](
		fmt.Sprintf(alertJS, "#recent-alerts .alert"), chromedp.WithPollingInterval(250*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second)))
	if !names[a.Rule] || a.Key == "" || a.ID == "" || (a.State != "firing" && a.State != "resolved") ||
		!strings.Contains(a.Text, a.Rule) {
		t.Errorf("alert on the overview: %+v (rules: %v)", a, names)
	}
	t.Logf("first alert: %s %s %s %s", a.Rule, a.Key, a.Severity, a.State)
	screenshot(t, ctx, "ui-overview.png")

	// The Alerts tab lists it too.
	do(t, ctx, 10*time.Second, "open the Alerts tab", chromedp.Click(chromedp.CSS(`#tabs a[data-tab="alerts"]`)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#alerts .alert[data-id=%q]`, a.ID))))

	// The Rules tab shows every bundled rule.
	do(t, ctx, 10*time.Second, "open the Rules tab", chromedp.Click(chromedp.CSS(`#tabs a[data-tab="rules"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#rules tbody tr[data-rule="hot_motor"]`)))
	shown := run(t, ctx, 5*time.Second, "rules listed", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#rules tbody tr[data-rule]')].map(r => r.dataset.rule)`))
	if len(shown) != len(names) {
		t.Errorf("the Rules tab lists %v, want %d rules %v", shown, len(names), names)
	}

	// Devices: open the chart of the alert's device. Its key is a level of
	// the cards' topics; the page puts markers on the first card it finds.
	do(t, ctx, 10*time.Second, "open the Devices tab", chromedp.Click(chromedp.CSS(`#tabs a[data-tab="devices"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#devices [data-device]`)))
	cards := run(t, ctx, 5*time.Second, "device cards", chromedp.Evaluate[[]string](fmt.Sprintf(
		`[...document.querySelectorAll('#devices [data-device]')].map(c => c.dataset.device).filter(k => k === %[1]q || k.split('/').includes(%[1]q))`, a.Key)))
	if len(cards) == 0 {
		t.Fatalf("no device card for the alert's key %q", a.Key)
	}
	marked := false
	for _, key := range cards {
		do(t, ctx, 10*time.Second, "open the chart of "+key,
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#devices [data-device=%q]`, key))),
			chromedp.WaitVisible(chromedp.CSS(`#device-detail`)))
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := chromedp.Run(c, chromedp.Poll[chromedp.Void](`document.querySelector('#chart .marker[data-rule]')`,
			chromedp.WithPollingInterval(100*time.Millisecond)))
		cancel()
		if err == nil {
			marked = true
			break
		}
	}
	if !marked {
		t.Errorf("no alert marker on the charts of %v", cards)
	}
	// A device's own timestamp fields read as clock times, not raw text or
	// a Unix number with thousands separators.
	stamps := run(t, ctx, 5*time.Second, "timestamp fields", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#devices [data-field="ts"] .value, #devices [data-field="time"] .value')].map(e => e.textContent)`))
	for _, s := range stamps {
		if regexp.MustCompile(`\d{4}-\d\d-\d\dT|\d,\d{3},`).MatchString(s) {
			t.Errorf("a timestamp field shows %q in a device card", s)
		}
	}
	if len(stamps) == 0 {
		t.Error("no timestamp fields in the device cards (the simulator sends ts)")
	}
	run(t, ctx, 20*time.Second, "the chart draws a line", chromedp.Poll[chromedp.Void](`document.querySelector('#chart polyline.line')`,
		chromedp.WithPollingInterval(200*time.Millisecond)))

	// A detector's alert (the demo's zscore rules on temperature and heat):
	// its chart shades the expected band while firing and puts a dot at the
	// value that fired, outside the band. The demo's random faults may not
	// spike a temperature within the test's time, so a device of the test's
	// own, on the demo's broker, sends 70 ordinary readings (the rule's
	// min_samples is 60) and then a spike that it holds.
	spiker := device(t, "tcp://"+brokerAddr, nil, "", "")
	go func() {
		for i := 0; time.Since(started) < 4*time.Minute; i++ {
			temp := 40 + float64(i%3)/10
			if i >= 70 {
				temp = 400
			}
			if spiker.Publish("sensors/probe-99/temperature", []byte(reading(temp, time.Now())), 1, false) != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	band := run(t, ctx, 120*time.Second, "a detector alert's band and point on a chart", chromedp.Poll[bandView](bandJS,
		chromedp.WithPollingInterval(500*time.Millisecond), chromedp.WithPollingTimeout(120*time.Second)))
	if band.Device == "" || band.Height <= 0 || band.Width <= 0 || (band.PointY >= band.Top && band.PointY <= band.Top+band.Height) {
		t.Errorf("band %+v: want a shaded band with the firing point outside it", band)
	}
	t.Logf("band on %s: %+v", band.Device, band)
	screenshot(t, ctx, "ui.png")

	// A phone: nothing may stick out sideways.
	do(t, ctx, 10*time.Second, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(url+"#overview"), chromedp.WaitVisible(`#conn[data-state="live"]`))
	run(t, ctx, 90*time.Second, "an alert on the phone's overview", chromedp.Poll[chromedp.Void](`document.querySelector('#recent-alerts .alert')`,
		chromedp.WithPollingInterval(250*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second)))
	for _, tab := range []string{"overview", "devices", "alerts", "rules"} {
		do(t, ctx, 10*time.Second, "phone: "+tab, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#tabs a[data-tab=%q]`, tab))),
			chromedp.WaitVisible(chromedp.CSS("#tab-"+tab)), chromedp.Sleep(300*time.Millisecond))
		w := run(t, ctx, 5*time.Second, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if w > 390 {
			wide := run(t, ctx, 5*time.Second, "wide elements", chromedp.Evaluate[[]string](`[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > 391 && !e.closest('.scroll'))
  .slice(0, 8).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && e.className.baseVal === undefined ? '.' + e.className : ''))`))
			t.Errorf("phone, %s tab: the page is %d px wide in a 390 px screen; too wide: %v", tab, w, wide)
		}
		switch tab {
		case "overview":
			screenshot(t, ctx, "ui-phone.png")
		case "devices":
			// Opening the last device brings its chart into view.
			do(t, ctx, 10*time.Second, "phone: open a device", chromedp.Click(chromedp.CSS(`#devices [data-device]:last-child`)),
				chromedp.WaitVisible(chromedp.CSS(`#device-detail`)))
			run(t, ctx, 5*time.Second, "phone: the chart is in view", chromedp.Poll[chromedp.Void](
				`(() => { const r = document.querySelector('#chart').getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight; })()`,
				chromedp.WithPollingInterval(100*time.Millisecond)))
			screenshot(t, ctx, "ui-phone-devices.png")
		}
	}
	screenshot(t, ctx, "ui-phone-rules.png")
	for _, e := range errs.list() {
		t.Errorf("page error: %s", e)
	}
}

// TestBrowserToken: a gateway with an HTTP token. The page asks for the
// token, works once it is given (form or ?token=, which it then removes
// from the address bar) and asks again for a wrong one.
func TestBrowserToken(t *testing.T) {
	const token = "tok-browser-42"
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "http.token"), token+"\n")
	writeFile(t, filepath.Join(dir, "rules", "hot.yaml"), hotRule)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v := startVigil(t, dir, fmt.Sprintf(`gateway: tokened
broker: {listen: "127.0.0.1:%d"}
state: {path: vigil.db}
rules: rules
http: {listen: "%s", token_file: http.token}
`, freePort(t), httpAddr), httpAddr)
	// The embedded broker without mqtt.broker: in-process ingest, no MQTT
	// connection of vigil's own to wait for.
	v.waitLog("vigil running", 1, 15*time.Second)
	base := v.http + "/"
	ctx := browser(t)

	do(t, ctx, 20*time.Second, "no token: the page asks for it", chromedp.Navigate(base), chromedp.WaitVisible(`#login`))
	do(t, ctx, 20*time.Second, "a wrong token", chromedp.SendKeys(`#token-input`, "nope"), chromedp.Click(`#login button[type="submit"]`))
	// The form stores the token and reloads the page, which asks again.
	waitJS(t, ctx, 20*time.Second, "a wrong token: asked again",
		`sessionStorage.getItem('vigil.token') === 'nope' && document.readyState === 'complete' && !document.querySelector('#login').hidden && !document.querySelector('#token-input').value`)
	do(t, ctx, 20*time.Second, "the right token in the form",
		chromedp.SendKeys(`#token-input`, token), chromedp.Click(`#login button[type="submit"]`),
		chromedp.WaitVisible(`#conn[data-state="live"]`), chromedp.WaitNotVisible(`#login`))

	// A fresh tab has no sessionStorage: ?token= signs it in.
	tab, cancel := chromedp.NewContext(ctx)
	defer cancel()
	if err := chromedp.Do(tab); err != nil { // opens the tab for its whole life
		t.Fatal(err)
	}
	do(t, tab, 20*time.Second, "?token= in a new tab", chromedp.Navigate(base+"?token="+token+"#overview"),
		chromedp.WaitVisible(`#conn[data-state="live"]`))
	href := run(t, tab, 5*time.Second, "the address", chromedp.Evaluate[string](`location.href`))
	if strings.Contains(href, token) {
		t.Errorf("the token stays in the address bar: %s", href)
	}
}
