//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/conn"
)

// clientTLS is what a device or a watcher uses: the CA, and the client
// certificate when cert is set.
func clientTLS(t *testing.T, p *pki, cert bool) *tls.Config {
	t.Helper()
	b, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert {
		c, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc
}

// TestMosquittoTLS: vigil's MQTT client against Mosquitto's TLS listeners
// with passwords, with and without a client certificate, and what it does
// when the broker refuses it: keep running, say why, retry with backoff.
func TestMosquittoTLS(t *testing.T) {
	p := newPKI(t)
	m := startMosquitto(t, mosquittoOptions{TLS: p, Users: map[string]string{"vigil": "s3cret", "device": "d3v"}})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "good.pass"), "s3cret\n")
	writeFile(t, filepath.Join(dir, "bad.pass"), "guess\n")
	writeFile(t, filepath.Join(dir, "rules", "hot.yaml"), hotRule)

	t.Run("client certificate and password", func(t *testing.T) {
		t.Parallel()
		d := filepath.Join(dir, "ok")
		// The sensors and the watcher use the plain listener of the same
		// Mosquitto; vigil reads and forwards over the TLS one.
		alerts := watchUpstream(t, m.Addr())
		tlsURL := fmt.Sprintf("tls://127.0.0.1:%d", m.CertPort)
		tlsBlock := fmt.Sprintf("{ca: %s, cert: %s, key: %s}", p.CA, p.ClientCert, p.ClientKey)
		v := startVigil(t, mkdir(t, d), fmt.Sprintf(`gateway: tls
mqtt: {broker: "%s", client_id: vigil-tls, username: vigil, password_file: %s, tls: %s}
upstream: {broker: "%s", username: vigil, password_file: %s, tls: %s}
state: {path: vigil.db}
rules: %s
http: {listen: "off"}
`, tlsURL, filepath.Join(dir, "good.pass"), tlsBlock, tlsURL, filepath.Join(dir, "good.pass"), tlsBlock, filepath.Join(dir, "rules")), "")
		v.waitLog("mqtt connected", 2, 15*time.Second)
		dev := device(t, "tcp://"+m.Addr(), nil, "", "")
		ts := time.Now().UTC().Truncate(time.Millisecond)
		publish(t, dev, "sensors/tls-1/temperature", reading(88, ts))
		a := alerts.waitRule(t, "hot_motor", 1, 15*time.Second)[0]
		if a.Key != "tls-1" || !a.Time.Equal(ts) || a.Topic != "vigil/tls/alerts/hot_motor" {
			t.Fatalf("alert %+v", a)
		}
		// And a TLS device with its own certificate reaches vigil too.
		tdev := device(t, tlsURL, clientTLS(t, p, true), "device", "d3v")
		publish(t, tdev, "sensors/tls-2/temperature", reading(89, ts))
		alerts.waitRule(t, "hot_motor", 2, 15*time.Second)
	})

	refused := []struct {
		name string
		port int
		pass string
		tls  string
		want *regexp.Regexp // in vigil's "mqtt connect failed" lines
	}{
		{"wrong password", m.TLSPort, "bad.pass", fmt.Sprintf("{ca: %s}", p.CA),
			regexp.MustCompile(`(?i)not authori[sz]ed|bad user name or password`)},
		{"wrong CA", m.TLSPort, "good.pass", fmt.Sprintf("{ca: %s}", p.OtherCA),
			regexp.MustCompile(`certificate signed by unknown authority`)},
		{"no client certificate", m.CertPort, "good.pass", fmt.Sprintf("{ca: %s}", p.CA),
			// TLS 1.3 sends the server's refusal after the client's side
			// of the handshake is done, so an attempt may instead see the
			// connection reset under its CONNECT.
			regexp.MustCompile(`tls: certificate required|connection reset by peer`)},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := mkdir(t, filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")))
			url := fmt.Sprintf("tls://127.0.0.1:%d", tc.port)
			v := startVigil(t, d, fmt.Sprintf(`gateway: refused
mqtt: {broker: "%s", client_id: vigil-%s, username: vigil, password_file: %s, tls: %s}
state: {path: vigil.db}
rules: %s
http: {listen: "off"}
`, url, filepath.Base(d), filepath.Join(dir, tc.pass), tc.tls, filepath.Join(dir, "rules")), "")
			v.waitLog("mqtt connect failed", 1, 10*time.Second)
			t0 := time.Now()
			// Backoff 1 s doubling with ±20 % jitter: attempts at about
			// 0, 1, 3 and 7 s, so the third comes no sooner than 2.4 s
			// after the first. A tight loop would make hundreds by then.
			// Only this lower bound is checked: a loaded machine is slower.
			v.waitLog("mqtt connect failed", 3, 30*time.Second)
			if d := time.Since(t0); d < 2*time.Second {
				t.Fatalf("3 failed attempts within %v: no backoff", d)
			}
			if !v.running() {
				t.Fatalf("vigil exited: %v", v.cmd.ProcessState)
			}
			lines := v.logs.lines("mqtt connect failed", url)
			for _, l := range lines {
				if !tc.want.MatchString(l) {
					t.Fatalf("the error does not say why (want %s): %s", tc.want, l)
				}
			}
			if len(lines) < 3 {
				t.Fatalf("%d failed attempts logged with the broker's URL, want 3: %q", len(lines), lines)
			}
			if v.logs.count("mqtt connected") != 0 {
				t.Fatal("vigil connected although it should have been refused")
			}
			t.Logf("%d attempts in %s; first error: %s", len(lines), time.Since(t0).Round(time.Second), lines[0])
		})
	}
}

// passwd writes a user of the embedded broker with `vigil passwd`.
func passwd(t *testing.T, file, user, pass string, args ...string) {
	t.Helper()
	cmd := exec.Command(vigilBin, append([]string{"passwd", file, user}, args...)...)
	cmd.Stdin = strings.NewReader(pass + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vigil passwd: %v\n%s", err, out)
	}
}

func mkdir(t *testing.T, d string) string {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestEmbeddedBrokerTLS: vigil's own broker with TLS and a users file,
// reached by a TLS client that trusts the CA; and the HTTP token.
func TestEmbeddedBrokerTLS(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	users := filepath.Join(dir, "broker.users")
	passwd(t, users, "vigil", "in5ide", "-role", "admin")
	passwd(t, users, "device", "d3v", "-prefix", "sensors/emb-1")
	writeFile(t, filepath.Join(dir, "vigil.pass"), "in5ide\n")
	writeFile(t, filepath.Join(dir, "http.token"), "tok-e2e-0123456789\n")
	writeFile(t, filepath.Join(dir, "rules", "hot.yaml"), hotRule)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	url := "tls://" + addr
	v := startVigil(t, dir, fmt.Sprintf(`gateway: embedded
broker: {listen: "%s", users_file: broker.users, tls: {cert: %s, key: %s}}
mqtt: {broker: "%s", username: vigil, password_file: vigil.pass, tls: {ca: %s}}
upstream: {broker: "%s", username: vigil, password_file: vigil.pass, tls: {ca: %s}}
state: {path: vigil.db}
rules: rules
http: {listen: "%s", token_file: http.token}
`, addr, p.ServerCert, p.ServerKey, url, p.CA, url, p.CA, httpAddr), httpAddr)
	v.waitLog("mqtt connected", 2, 15*time.Second)

	t.Run("TLS client with users", func(t *testing.T) {
		// Only an admin reads what the others publish.
		watch := device(t, url, clientTLS(t, p, false), "vigil", "in5ide")
		alerts := &upstream{}
		if err := watch.Subscribe("vigil/#", 1, alerts.add); err != nil {
			t.Fatal(err)
		}
		dev := device(t, url, clientTLS(t, p, false), "device", "d3v")
		ts := time.Now().UTC().Truncate(time.Millisecond)
		publish(t, dev, "sensors/emb-1/temperature", reading(99, ts))
		a := alerts.waitRule(t, "hot_motor", 1, 15*time.Second)[0]
		if a.Key != "emb-1" || !a.Time.Equal(ts) {
			t.Fatalf("alert %+v", a)
		}
	})
	t.Run("refused clients", func(t *testing.T) {
		for _, c := range []struct {
			name, url, user, pass string
			tls                   *tls.Config
		}{
			{"wrong password", url, "device", "nope", clientTLS(t, p, false)},
			{"no user", url, "", "", clientTLS(t, p, false)},
			{"plain TCP", "tcp://" + addr, "device", "d3v", nil},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c2, err := conn.Dial(ctx, conn.Options{Broker: c.url, TLS: c.tls, Username: c.user, Password: c.pass,
				Logger: quiet, ConnectTimeout: 3 * time.Second})
			cancel()
			if err == nil {
				c2.Close()
				t.Errorf("%s: connected", c.name)
			}
		}
	})
	t.Run("HTTP token", func(t *testing.T) {
		for _, c := range []struct {
			path, token string
			want        int
		}{
			{"/api/status", "", 401},
			{"/api/status", "wrong", 401},
			{"/api/status", "tok-e2e-0123456789", 200},
			{"/api/alerts", "", 401},
			{"/api/alerts", "tok-e2e-0123456789", 200},
			{"/metrics", "", 401},
			{"/healthz", "", 200},
		} {
			req, _ := http.NewRequest("GET", v.http+c.path, nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("GET %s with token %q: %d, want %d", c.path, c.token, resp.StatusCode, c.want)
			}
			if resp.StatusCode == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET %s: 401 without WWW-Authenticate: Bearer", c.path)
			}
		}
		// A reload needs the token too.
		for _, c := range []struct {
			token string
			want  int
		}{{"", 401}, {"tok-e2e-0123456789", 200}} {
			req, _ := http.NewRequest("POST", v.http+"/api/reload", nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("POST /api/reload with token %q: %d, want %d", c.token, resp.StatusCode, c.want)
			}
		}
		// EventSource cannot set headers: the live feed takes ?access_token=.
		for _, c := range []struct {
			query string
			want  int
		}{{"", 401}, {"?access_token=wrong", 401}, {"?access_token=tok-e2e-0123456789", 200}} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			req, _ := http.NewRequestWithContext(ctx, "GET", v.http+"/api/events"+c.query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			if resp.StatusCode != c.want || (c.want == 200 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")) {
				t.Errorf("GET /api/events%s: %d %s, want %d", c.query, resp.StatusCode, resp.Header.Get("Content-Type"), c.want)
			}
			cancel()
			resp.Body.Close()
		}
	})
}
