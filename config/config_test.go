package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/rules"
)

func parse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("vigil.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	return c
}

// wantErr parses src and wants an error containing want.
func wantErr(t *testing.T, src, want string) {
	t.Helper()
	_, err := Parse("vigil.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%q: error %v, want %q", src, err, want)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(p, []byte("gateway: g\nstate: {path: s.db, journal: false}\nrules: [r1, /abs/r2]\nupstream: {qos: 0}\n"), 0o644)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Path != filepath.Join(dir, "s.db") || c.State.Journal || c.Rules[0] != filepath.Join(dir, "r1") || c.Rules[1] != "/abs/r2" ||
		c.Upstream.QoS != 0 || c.MQTT.ClientID != "vigil-g" || c.Upstream.ClientID != "vigil-g-up" || c.HTTP.Listen != "127.0.0.1:8080" || c.State.CheckpointEvery != 10*time.Second {
		t.Fatalf("config %+v", c)
	}
	if !IsConfig([]byte("rules: /etc/x\n")) || IsConfig([]byte("rules:\n  - name: a\n")) || IsConfig([]byte("rules: [\n")) {
		t.Fatal("IsConfig")
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "missing.yaml")+":1:1: read: ") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestDefaults: an empty file is Default(), and a file that sets a key to
// its default value changes nothing else.
func TestDefaults(t *testing.T) {
	empty := parse(t, "")
	def := Default()
	def.File = "vigil.yaml"
	if !equalConfig(empty, def) {
		t.Fatalf("empty file %+v\nDefault   %+v", empty, def)
	}
	if c := parse(t, "state: {journal: true, commit_gap: 50ms}\nupstream: {qos: 1}\n"); !equalConfig(c, def) {
		t.Fatalf("defaults written out %+v", c)
	}
	if c := parse(t, "gateway: g\n"); c.State.CheckpointMessages != 10000 || c.MQTT.Queue != 10000 || c.Limits.MaxFuture != time.Hour || c.Log.Level != "info" {
		t.Fatalf("defaults %+v", c)
	}
}

func equalConfig(a, b *Config) bool {
	return strings.TrimSpace(strings.ReplaceAll(fmtConfig(a), "\n", " ")) == strings.TrimSpace(strings.ReplaceAll(fmtConfig(b), "\n", " "))
}

func fmtConfig(c *Config) string {
	return strings.Join([]string{c.File, c.Gateway, sprint(c.MQTT), sprint(c.Broker), sprint(c.Upstream), sprint(c.State), sprint(c.Rules), sprint(c.HTTP), sprint(c.Limits), sprint(c.Log), sprint(c.Fleet)}, "|")
}

// TestDaysAndWeeks: every duration of vigil.yaml reads days and weeks
// (event.ParseDuration, whose table test covers the syntax).
func TestDaysAndWeeks(t *testing.T) {
	const day = 24 * time.Hour
	c := parse(t, "state: {checkpoint_every: 1d, history: 2w}\nlimits: {grace: 1d, max_future: 1w}\nbroker: {listen: \"127.0.0.1:0\", max_session_expiry: 1d12h}\n")
	if c.State.CheckpointEvery != day || c.State.HistoryRetention != 14*day || c.Limits.Grace != day || c.Limits.MaxFuture != 7*day || c.Broker.Limits.MaxSessionExpiry != 36*time.Hour {
		t.Errorf("config state %+v limits %+v broker %+v", c.State, c.Limits, c.Broker.Limits)
	}
}

// TestConfigInProcess: an embedded broker with mqtt.broker omitted means
// in-process ingest; naming a broker, even the embedded one, subscribes.
func TestConfigInProcess(t *testing.T) {
	for _, tc := range []struct {
		src        string
		inProcess  bool
		mqttBroker string
	}{
		{"broker: {listen: \"127.0.0.1:1884\"}\n", true, "tcp://127.0.0.1:1884"},
		{"broker: {listen: \"127.0.0.1:1884\"}\nmqtt: {broker: \"tcp://127.0.0.1:1884\"}\n", false, "tcp://127.0.0.1:1884"},
		{"mqtt: {broker: \"tcp://10.0.0.2:1883\"}\n", false, "tcp://10.0.0.2:1883"},
		{"gateway: g\n", false, "tcp://127.0.0.1:1883"},
	} {
		c := parse(t, tc.src)
		if c.MQTT.InProcess != tc.inProcess || c.MQTT.Broker != tc.mqttBroker {
			t.Errorf("%q: in-process %v, mqtt broker %q; want %v, %q", tc.src, c.MQTT.InProcess, c.MQTT.Broker, tc.inProcess, tc.mqttBroker)
		}
	}
}

// TestConfigJournalMax: state.journal_max is a size in bytes with an
// optional unit, at least 1MiB; left out, the store's default (0 here).
func TestConfigJournalMax(t *testing.T) {
	for src, want := range map[string]int64{
		"gateway: g\n":                     0,
		"state: {journal_max: 64MiB}\n":    64 << 20,
		"state: {journal_max: 2GB}\n":      2e9,
		"state: {journal_max: 5000000}\n":  5e6,
		"state: {journal_max: 1 GiB}\n":    1 << 30,
		"state: {journal_max: 1048576B}\n": 1 << 20,
	} {
		if c := parse(t, src); c.State.JournalMax != want {
			t.Errorf("%q: %d, want %d", src, c.State.JournalMax, want)
		}
	}
	for src, msg := range map[string]string{
		"state:\n  journal_max: 10KB\n": "vigil.yaml:2:16: state: journal_max: at least 1MiB, got 10000 bytes",
		"state:\n  journal_max: lots\n": `vigil.yaml:2:16: state: journal_max: bad size "lots"`,
		"state:\n  journal_max: -5MB\n": `vigil.yaml:2:16: state: journal_max: bad size "-5MB"`,
	} {
		wantErr(t, src, msg)
	}
}

// TestConfigCheckpointMessages: state.checkpoint_messages, 10,000 when
// left out.
func TestConfigCheckpointMessages(t *testing.T) {
	if c := parse(t, "state: {checkpoint_messages: 1}\n"); c.State.CheckpointMessages != 1 {
		t.Fatalf("%+v", c.State)
	}
	if c := parse(t, "gateway: g\n"); c.State.CheckpointMessages != 10000 {
		t.Fatalf("default: %+v", c.State)
	}
}

// TestConfigIngestLimits: limits.max_topic_length and limits.max_payload,
// decoded into conn.IngestLimits; 256 and 64 KiB when left out.
func TestConfigIngestLimits(t *testing.T) {
	if c := parse(t, "limits: {max_topic_length: 100, max_payload: 4KiB}\n"); c.Limits.IngestLimits != (conn.IngestLimits{MaxTopic: 100, MaxPayload: 4096}) {
		t.Fatalf("%+v", c.Limits)
	}
	if c := parse(t, "gateway: g\n"); c.Limits.IngestLimits != (conn.IngestLimits{MaxTopic: 256, MaxPayload: 64 << 10}) {
		t.Fatalf("defaults: %+v", c.Limits)
	}
	wantErr(t, "limits:\n  max_topic_length: 70000\n", "vigil.yaml:2:21: limits: max_topic_length: at most 65535")
	wantErr(t, "limits:\n  max_payload: 1GiB\n", "vigil.yaml:2:16: limits: max_payload: at most 256MiB (MQTT's own limit), got 1073741824 bytes")
}

// TestConfigCommitGap: state.commit_gap is a duration up to 1s;
// DefaultCommitGap when left out; 0 when set so (a commit per message).
func TestConfigCommitGap(t *testing.T) {
	if c := parse(t, "state: {commit_gap: 2ms}\n"); c.State.CommitGap != 2*time.Millisecond {
		t.Fatalf("commit_gap: %v", c.State.CommitGap)
	}
	if c := parse(t, "gateway: g\n"); c.State.CommitGap != DefaultCommitGap {
		t.Fatalf("default: %v", c.State.CommitGap)
	}
	if c := parse(t, "state: {commit_gap: 0s}\n"); c.State.CommitGap != 0 {
		t.Fatalf("explicit 0: %v", c.State.CommitGap)
	}
	wantErr(t, "state:\n  commit_gap: 5s\n", "vigil.yaml:2:15: state: commit_gap: at most 1s")
	wantErr(t, "state:\n  commit_gap: -5ms\n", "vigil.yaml:2:15: state: commit_gap: duration must be positive, got -5ms")
}

// TestConfigBroker: the embedded broker's keys decode into broker.Options,
// with line:col errors; a listener beyond loopback needs users and TLS (or
// allow_plaintext).
func TestConfigBroker(t *testing.T) {
	src := `broker:
  listen: "0.0.0.0:8883"
  users_file: broker.users
  tls: {cert: s.pem, key: s.key}
  max_packet_size: 65536
  max_clients: 50
  max_clients_per_address: 5
  connect_timeout: 3s
  max_session_expiry: 2h
  max_sessions: 70
  max_inflight: 1000
  max_retained: 10
  max_subscriptions: 20
  max_login_failures: 4
`
	c, err := Parse("/etc/vigil/vigil.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := Broker{Options: broker.Options{Listen: "0.0.0.0:8883", Limits: broker.Limits{
		MaxPacketSize: 65536, MaxClients: 50, MaxClientsPerAddress: 5, ConnectTimeout: 3 * time.Second,
		MaxSessionExpiry: 2 * time.Hour, MaxSessions: 70, MaxInflight: 1000, MaxRetained: 10, MaxSubscriptions: 20, MaxLoginFailures: 4}},
		UsersFile: "/etc/vigil/broker.users", TLS: TLS{Cert: "/etc/vigil/s.pem", Key: "/etc/vigil/s.key"}}
	if sprint(c.Broker) != sprint(want) {
		t.Fatalf("broker %+v\nwant   %+v", c.Broker, want)
	}
	for _, tc := range []struct{ src, want string }{
		{"broker: {listen: \"0.0.0.0:1883\", users_file: u}\n", "vigil.yaml:1:10: broker: listening on 0.0.0.0:1883 (not loopback) without tls"},
		{"broker: {listen: \"0.0.0.0:1883\", tls: {cert: c, key: k}}\n", "vigil.yaml:1:10: broker: listening on 0.0.0.0:1883 (not loopback) requires users_file"},
		{"broker: {listen: \"127.0.0.1:1883\", max_inflight: 65536}\n", "vigil.yaml:1:50: broker: max_inflight: want 1 to 65535, got 65536"},
		{"broker: {listen: \"127.0.0.1:1883\", max_clients: -3}\n", "broker: max_clients: want a whole number >= 1"},
		{"broker: {listen: \"127.0.0.1:1883\", max_clients: 1.5}\n", `vigil.yaml:1:49: broker: max_clients: want a whole number >= 1, got "1.5"`},
		{"broker: {listen: \"127.0.0.1:1883\", max_session_expiry: 10ms}\n", "vigil.yaml:1:56: broker: max_session_expiry: want 1s to 136y, got 10ms"},
		{"broker: {listen: 1883}\n", `vigil.yaml:1:18: broker: listen: "1883": want host:port`},
		{"broker: {listen: \"127.0.0.1:1883\", tls: {cert: c}}\n", "vigil.yaml:1:42: broker: tls: cert and key go together"},
	} {
		wantErr(t, tc.src, tc.want)
	}
	if c := parse(t, "broker: {listen: \"0.0.0.0:1883\", users_file: u, allow_plaintext: true}\n"); !c.Broker.AllowPlaintext {
		t.Fatalf("allow_plaintext: %+v", c.Broker)
	}
}

// TestConfigUpstream: upstream.max_alert_bytes (at least 1024) and
// upstream.dead_after (conn.ForwarderOptions); 0, the store's and
// forwarder's defaults, when left out.
func TestConfigUpstream(t *testing.T) {
	if c := parse(t, "upstream: {max_alert_bytes: 2048, dead_after: 3}\n"); c.Upstream.MaxAlertBytes != 2048 || c.Upstream.DeadAfter != 3 {
		t.Fatalf("%+v", c.Upstream)
	}
	if c := parse(t, "gateway: g\n"); c.Upstream.MaxAlertBytes != 0 || c.Upstream.DeadAfter != 0 || c.Upstream.QoS != 1 {
		t.Fatalf("default: %+v", c.Upstream)
	}
	c := parse(t, "upstream: {broker: \"tls://cloud:8883\", client_id: up, username: u}\n")
	if c.Upstream.Options != (conn.Options{Broker: "tls://cloud:8883", ClientID: "up", Username: "u"}) {
		t.Fatalf("conn options %+v", c.Upstream.Options)
	}
	wantErr(t, "upstream:\n  max_alert_bytes: 100\n", "vigil.yaml:2:20: upstream: max_alert_bytes: at least 1024, got 100")
	wantErr(t, "upstream:\n  dead_after: 0\n", "vigil.yaml:2:15: upstream: dead_after: want a whole number >= 1")
	wantErr(t, "upstream:\n  qos: x\n", `vigil.yaml:2:8: upstream: qos: want 0 or 1, got "x"`)
	wantErr(t, "upstream:\n  qos: -1\n", `vigil.yaml:2:8: upstream: qos: want 0 or 1, got "-1"`)
}

// TestConfigFleet: the fleet block's defaults, paths relative to the
// config, and its errors with positions.
func TestConfigFleet(t *testing.T) {
	c, err := Parse("/etc/vigil/vigil.yaml", []byte("upstream: {broker: \"tcp://site:1883\"}\nstate: {path: /var/lib/vigil/vigil.db}\nfleet: {public_keys: [fleet.pub]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Fleet
	if !f.Enabled || f.Prefix != "vigil" || f.RulesDir != "/var/lib/vigil/fleet-rules" || f.HealthEvery != 0 ||
		len(f.PublicKeys) != 1 || f.PublicKeys[0] != "/etc/vigil/fleet.pub" || f.KeyPos[0] != (rules.Pos{File: "/etc/vigil/vigil.yaml", Line: 3, Col: 23}) {
		t.Fatalf("fleet %+v", f)
	}
	if c := parse(t, "gateway: g\n"); c.Fleet.Enabled {
		t.Fatal("fleet enabled without the block")
	}
	if c := parse(t, "upstream: {broker: \"tcp://h:1\"}\nfleet:\n"); !c.Fleet.Enabled {
		t.Fatal("fleet: with nothing in it")
	}
	if !IsConfig([]byte("fleet: {}\n")) {
		t.Fatal("IsConfig: a fleet block")
	}
	for _, tc := range []struct{ src, want string }{
		{"fleet: {prefix: site}\n", "vigil.yaml:1:1: fleet: needs upstream.broker"},
		{"fleet: {health_every: soon}\n", "vigil.yaml:1:1: fleet: needs upstream.broker"},
		{"upstream: {broker: \"tcp://h:1\"}\nfleet:\n  prefix: \"a/#\"\n", "vigil.yaml:3:11: fleet: prefix \"a/#\""},
		{"upstream: {broker: \"tcp://h:1\"}\nfleet:\n  health_every: 10ms\n", "vigil.yaml:3:17: fleet: health_every: at least 1s"},
		{"upstream: {broker: \"tcp://h:1\"}\nfleet:\n  public_key: [a]\n", "vigil.yaml:3:3: fleet: unknown key \"public_key\""},
		{"upstream: {broker: \"tcp://h:1\"}\nfleet:\n  public_keys: []\n", "vigil.yaml:3:16: fleet: public_keys: empty list"},
	} {
		wantErr(t, tc.src, tc.want)
	}
}

// TestErrors: what a user gets wrong is reported where it is, in
// vigil.yaml's words: every problem at once, in file order, never a Go
// type.
func TestErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"gatway: g\n", `vigil.yaml:1:1: config: unknown key "gatway" (did you mean "gateway"?)`},
		{"mqtt: {brokr: \"tcp://h:1\"}\n", `vigil.yaml:1:8: mqtt: unknown key "brokr" (did you mean "broker"?)`},
		{"mqtt: {keepalive: 10s}\n", `vigil.yaml:1:8: mqtt: unknown key "keepalive" (want one of broker, client_id, password_file, queue, tls, username)`},
		{"state: {synchronous: NORMAL}\n", `vigil.yaml:1:9: state: unknown key "synchronous"`},
		{"state: {history_retention: 1d}\n", `vigil.yaml:1:9: state: unknown key "history_retention" (want one of checkpoint_every, checkpoint_messages, commit_gap, history, journal, journal_max, outbox_max, path)`},
		{"mqtt: {tls: {ca: a, crt: b}}\n", `vigil.yaml:1:21: mqtt: tls: unknown key "crt" (did you mean "cert"?)`},
		{"mqtt: tcp://h:1\n", `vigil.yaml:1:7: mqtt: want a mapping, got "tcp://h:1"`},
		{"- a\n", `vigil.yaml:1:1: config: want a mapping, got a list`},
		{"gateway: [a]\n", `vigil.yaml:1:10: gateway: want a single value, got a list`},
		{"gateway:\n", `vigil.yaml:1:10: gateway: missing value`},
		{"gateway: \"\"\n", `vigil.yaml:1:10: gateway: empty`},
		{"mqtt: {queue: lots}\n", `vigil.yaml:1:15: mqtt: queue: want a whole number >= 1, got "lots"`},
		{"mqtt: {queue: 99999999999999999999}\n", `mqtt: queue: want a whole number >= 1, got "99999999999999999999"`},
		{"limits: {grace: 1 d}\n", `vigil.yaml:1:17: limits: grace: bad duration "1 d" (write a number and a unit: 90s, 5m, 24h, 7d, 2w, 1d12h)`},
		{"limits: {grace: 5}\n", `limits: grace: bad duration "5"`},
		{"limits: {max_future: 0s}\n", `vigil.yaml:1:22: limits: max_future: duration must be positive, got 0s`},
		{"state: {journal: no}\n", `vigil.yaml:1:18: state: journal: want true or false, got "no"`},
		{"state: {journal: 1}\n", `vigil.yaml:1:18: state: journal: want true or false, got a number`},
		{"gateway: a\ngateway: b\n", `vigil.yaml:2:1: yaml: mapping key "gateway" already defined at [1:1]`},
		{"a: &x {gateway: g}\n<<: *x\n", `merge keys (<<) are not supported`},
		{"http: {listen: \"0.0.0.0:80\"}\n", `vigil.yaml:1:8: http: listening on 0.0.0.0:80 (not loopback) requires token_file`},
		{"http: {listen: 8080}\n", `vigil.yaml:1:16: http: listen: "8080": want host:port`},
		{"log: {level: loud}\n", `vigil.yaml:1:14: log: level "loud": want debug, info, warn or error`},
		{"upstream: {broker: \"http://h:1\"}\n", `vigil.yaml:1:20: upstream: broker: unknown scheme "http" (want tcp, ssl, tls, ws or wss)`},
		{"rules: []\n", `vigil.yaml:1:8: rules: empty list`},
		{"gateway: g\n---\ngateway: h\n", `vigil.yaml:3:8: only one YAML document per file`},
		{"gateway: [\n", `vigil.yaml:1:`},
		{"gateway: *nope\n", `unknown alias "nope"`},
	} {
		_, err := Parse("vigil.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "Go") || strings.Contains(err.Error(), "int64") || strings.Contains(err.Error(), "unmarshal") {
			t.Errorf("%q: error in Go's terms: %v", tc.src, err)
		}
	}
	_, err := Parse("vigil.yaml", []byte("state:\n  journal: maybe\n  history: soon\nbroker: {max_inflight: 0}\n"))
	es := rules.AsErrors(err)
	if len(es) != 3 || es[0].Pos.Line != 2 || es[1].Pos.Line != 3 || es[2].Pos.Line != 4 {
		t.Fatalf("want 3 errors in file order, each once, got %v", err)
	}
}

// TestAnchors: an anchored value may be reused with an alias.
func TestAnchors(t *testing.T) {
	c := parse(t, "mqtt: {tls: &t {ca: /ca.pem}}\nupstream: {tls: *t, broker: \"tls://h:1\"}\n")
	if c.Upstream.TLS.CA != "/ca.pem" || c.MQTT.TLS.CA != "/ca.pem" {
		t.Fatalf("tls %+v %+v", c.MQTT.TLS, c.Upstream.TLS)
	}
}

// TestSecretFiles: a secret file others may read is refused, at the value
// that names it.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.pass")
	if err := os.WriteFile(open, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Parse(filepath.Join(dir, "vigil.yaml"), []byte("mqtt:\n  password_file: open.pass\n"))
	if err == nil || !strings.Contains(err.Error(), ":2:18: mqtt: password_file: "+open+" is readable or writable by group or others (mode 0644)") {
		t.Fatalf("open secret: %v", err)
	}
	os.Chmod(open, 0o600)
	if c, err := Parse(filepath.Join(dir, "vigil.yaml"), []byte("mqtt:\n  password_file: open.pass\n")); err != nil || c.MQTT.PasswordFile != open {
		t.Fatalf("closed secret: %v", err)
	}
}

// TestExamples: the shipped configs parse.
func TestExamples(t *testing.T) {
	for _, p := range []string{"../examples/vigil.yaml", "../packaging/vigil.yaml", "../testdata/check/config.good.yaml", "../testdata/check/fleet.good.yaml"} {
		if _, err := Load(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestExampleKeys: every key examples/vigil.yaml shows, commented out or
// not, is accepted (the example lists every setting).
func TestExampleKeys(t *testing.T) {
	b, err := os.ReadFile("../examples/vigil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// "#   max_keys: 10000" and "  # username: vigil" are settings shown
	// commented out.
	commented := regexp.MustCompile(`(?m)^(\s*)# ?(\s*[a-z_]+:(?: |$))`)
	src := commented.ReplaceAllString(string(b), "$1$2")
	c, err := Parse("vigil.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if c.Limits.MaxKeys != 10000 || c.Fleet.HealthEvery != 30*time.Second || c.Broker.Limits.MaxLoginFailures != 10 || c.State.JournalMax != 256<<20 || c.Upstream.DeadAfter != 5 {
		t.Fatalf("the example's settings were not all read: %+v", c)
	}
}

// FuzzParse: the config parser never panics, every error it returns has
// a position, and a config it accepts holds to its checks.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../examples/vigil.yaml", "../packaging/vigil.yaml", "../testdata/check/config.bad.yaml", "../testdata/check/broker.bad.yaml", "../testdata/check/fleet.bad.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("state: {journal_max: 1GiB, commit_gap: 0s}\nlimits: {max_payload: 4KiB}\nupstream: {qos: 0}\n"))
	f.Add([]byte("mqtt: &a {tls: *a}\n"))
	f.Add([]byte("broker: {listen: \"[::1]:0\", max_inflight: 1}\nfleet:\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		c, err := Parse("f.yaml", src)
		if err != nil {
			es := rules.AsErrors(err)
			if len(es) == 0 {
				t.Fatalf("error without positions: %v", err)
			}
			for _, e := range es {
				if e.Pos.File != "f.yaml" || e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Fatalf("bad position: %v", e)
				}
			}
			return
		}
		if c.Upstream.QoS != 0 && c.Upstream.QoS != 1 || c.State.CommitGap < 0 || c.State.CommitGap > time.Second ||
			c.State.CheckpointEvery <= 0 || c.MQTT.Queue < 1 || c.Limits.MaxTopic < 1 || c.Limits.MaxTopic > 65535 ||
			c.Limits.MaxPayload < 1 || c.Gateway == "" || c.MQTT.ClientID == "" || strings.ContainsAny(c.Gateway, "/+#") {
			t.Fatalf("accepted %+v", c)
		}
		if c.Broker.Listen != "" && !IsLoopback(c.Broker.Listen) && c.Broker.UsersFile == "" {
			t.Fatalf("open broker accepted: %+v", c.Broker)
		}
		if len(c.Fleet.KeyPos) != len(c.Fleet.PublicKeys) {
			t.Fatalf("fleet keys %v at %v", c.Fleet.PublicKeys, c.Fleet.KeyPos)
		}
	})
}

func sprint(v any) string { return fmt.Sprintf("%+v", v) }
