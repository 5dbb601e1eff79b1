package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gw/vigil/expr"
)

func parseT(t *testing.T, src string) (*Set, Errors) {
	t.Helper()
	set, err := Parse([]string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(src)})
	return set, AsErrors(err)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"no rules", "sources: []\n", "r.yaml:1:1: file: missing `rules:`"},
		{"bad name", "rules:\n  - name: Hot\n    from: a\n", `r.yaml:2:11: rule: name "Hot"`},
		{"missing from", "rules:\n  - name: a\n", `r.yaml:2:5: rule "a": missing ` + "`from`"},
		{"unknown key", "rules:\n  - name: a\n    from: a\n    wehre: x\n", `r.yaml:4:5: rule: unknown key "wehre" (did you mean "where"?)`},
		{"duplicate", "rules:\n  - name: a\n    from: a\n  - name: a\n    from: b\n", `r.yaml:4:5: rule "a": duplicate name, first defined at r.yaml:2:5`},
		{"duration", "rules:\n  - name: a\n    from: a\n    cooldown: 5 min\n", `r.yaml:4:15: rule "a": cooldown: bad duration "5 min"`},
		{"duplicate with errors", "rules:\n  - name: a\n    from: a/#/b\n  - name: a\n    from: b\n    severity: high\n", `r.yaml:4:5: rule "a": duplicate name, first defined at r.yaml:2:5`},
		{"duplicate both bad", "rules:\n  - name: a\n    from: a\n    where: x >\n  - name: a\n    from: b\n    where: y >\n", `r.yaml:5:5: rule "a": duplicate name, first defined at r.yaml:2:5`},
		{"day duration", "rules:\n  - name: a\n    from: a\n    cooldown: 1 d\n", `cooldown: bad duration "1 d" (write a number and a unit: 90s, 5m, 24h, 7d, 2w, 1d12h)`},
		{"negative duration", "rules:\n  - name: a\n    from: a\n    absent: -5m\n", `duration must be positive`},
		{"filter", "rules:\n  - name: a\n    from: a/#/b\n", `r.yaml:3:11: rule "a": from: topic filter "a/#/b"`},
		{"star", "rules:\n  - name: a\n    from: sensors/*/temp\n", `r.yaml:3:19: rule "a": from: topic filter "sensors/*/temp": level 2: MQTT has no * wildcard; did you mean +?`},
		{"star in list", "rules:\n  - name: a\n    from: [a/b, \"s/pump*\"]\n", `r.yaml:3:24: rule "a": from: topic filter "s/pump*": level 2: MQTT has no * wildcard`},
		{"star in source", "sources:\n  - {from: \"shop/*\", lateness: 1m}\nrules: []\n", `r.yaml:2:18: source: from: topic filter "shop/*": level 2: MQTT has no * wildcard`},
		{"star in table", "tables:\n  - {name: t, from: m/*/s}\nrules: []\n", `r.yaml:2:23: table: from: topic filter "m/*/s": level 2: MQTT has no * wildcard`},
		{"not bool", "rules:\n  - name: a\n    from: a\n    where: x * 2\n", `r.yaml:4:12: rule "a": where: must be a boolean expression`},
		{"typed not bool", `rules:
  - name: a
    from: a
    where: topic + "x"
`, `rule "a": where:`},
		{"syntax", "rules:\n  - name: a\n    from: a\n    where: x >\n", `r.yaml:4:14: rule "a": where: unexpected token EOF`},
		{"window type", "rules:\n  - name: a\n    from: a\n    window: {slidin: 1h}\n    aggregate: {n: count()}\n", `r.yaml:4:14: rule "a": window: unknown type "slidin" (did you mean "sliding"?)`},
		{"hopping every", "rules:\n  - name: a\n    from: a\n    window: {hopping: 10m, every: 20m}\n    aggregate: {n: count()}\n", `every (20m0s) must not exceed`},
		{"window no aggregate", "rules:\n  - name: a\n    from: a\n    window: {tumbling: 1m}\n", "a window needs `aggregate:`"},
		{"when without window", "rules:\n  - name: a\n    from: a\n    when: x > 1\n", "when needs a window"},
		{"unknown aggregate", "rules:\n  - name: a\n    from: a\n    window: {count: 3}\n    aggregate: {m: mean(x)}\n", `unknown function "mean"`},
		{"arity", "rules:\n  - name: a\n    from: a\n    window: {count: 3}\n    aggregate: {m: sum()}\n", `sum takes 1 argument(s), got 0`},
		{"percentile range", "rules:\n  - name: a\n    from: a\n    window: {count: 3}\n    aggregate: {m: \"percentile(x, 101)\"}\n", `percentile wants a number from 0 to 100`},
		{"two kinds", "rules:\n  - name: a\n    from: a\n    absent: 1m\n    pattern: [{where: x}]\n", `pattern and absent cannot be combined`},
		{"not first", "rules:\n  - name: a\n    from: a\n    pattern:\n      - {not: true, where: x == 1, within: 1m}\n", "cannot start with a `not` step"},
		{"trailing not within", "rules:\n  - name: a\n    from: a\n    pattern:\n      - {as: f}\n      - {not: true, where: x == 1}\n", "needs `within`"},
		{"alias reuse", "rules:\n  - name: a\n    from: a\n    pattern:\n      - {as: f}\n      - {as: f}\n", `alias "f" is used twice`},
		{"unknown table", "rules:\n  - name: a\n    from: a\n    where: lookup(\"t\", 1) != nil\n", `lookup: unknown table "t"`},
		{"severity", "rules:\n  - name: a\n    from: a\n    severity: high\n", `severity "high": want info, warning or critical`},
		{"topic template", "rules:\n  - name: a\n    from: a\n    topic: x/{device}\n", `unknown placeholder {device}`},
		{"yaml", "rules:\n  - name: a\n   from: a\n", "r.yaml:3:"},
		{"too long", "rules:\n  - name: a\n    from: a\n    where: x == \"" + strings.Repeat("a", expr.MaxLen) + "\"\n", "limit is 4096"},
		{"too many nodes", "rules:\n  - name: a\n    from: a\n    where: " + strings.Repeat("x + ", 1500) + "x > 1\n", "rule \"a\": where:"},
		{"source dedupe", "sources:\n  - from: a\n    dedupe: {field: id}\nrules: []\n", "needs both field and within"},
		{"source format", "sources:\n  - from: a\n    format: xml\nrules: []\n", `r.yaml:3:13: source: format:`},
		{"table dup", "tables:\n  - {name: t, from: a}\n  - {name: t, from: b}\nrules: []\n", `table "t": already defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := parseT(t, tc.src)
			if errs == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(errs.Error(), tc.want) {
				t.Fatalf("errors:\n%s\nwant one containing %q", errs, tc.want)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, errs := parseT(t, "rules:\n  - name: a\n    from: a\n    where: x >\n  - name: b\n    from: a/#/b\n    cooldown: soon\n")
	if len(errs) != 3 {
		t.Fatalf("want 3 errors, got %d:\n%s", len(errs), errs)
	}
}

func TestParseGood(t *testing.T) {
	set, errs := parseT(t, `
sources:
  - {from: shop/#, lateness: 1m}
  - {from: shop/orders, lateness: 5m}
  - {from: other/#, lateness: 1h}
tables:
  - {name: t, from: "m/{id}/status", key: id}
rules:
  - name: big
    from: [shop/orders, "shop/{store}/orders"]
    where: amount > 1 && lookup("t", store) == nil
    key: customer
    cooldown: 10m
    message: "{{customer}} {{amount * 2}}"
    window: {hopping: 1h, every: 15m}
    aggregate:
      n: count()
      p: "percentile(amount, 90)"
    when: n >= 3 && p > 10
  - name: q
    from: "m/{id}/x"
    pattern:
      - {as: first, where: type == "a"}
      - {as: second, where: type == "b" && x == first.x, within: 5m}
      - {not: true, where: type == "c", within: 1h}
`)
	if errs != nil {
		t.Fatal(errs)
	}
	r := set.Rules[0]
	if r.Kind != Window || r.Lateness != 5*time.Minute || r.Cooldown != 10*time.Minute || len(r.Aggregates) != 2 || r.Aggregates[1].P != 90 {
		t.Fatalf("rule %+v", r)
	}
	if got := strings.Join(set.Filters(), " "); got != "m/+/status m/+/x shop/+/orders shop/orders" {
		t.Fatalf("filters %q", got)
	}
	if set.Rules[1].Kind != Pattern || len(set.Rules[1].Steps) != 3 || !set.Rules[1].Steps[2].Not {
		t.Fatalf("pattern %+v", set.Rules[1])
	}
}

// TestDaysAndWeeks: every duration of a rule file and of vigil.yaml reads
// days and weeks (event.ParseDuration, whose table test covers the syntax).
func TestDaysAndWeeks(t *testing.T) {
	set, errs := parseT(t, `
sources:
  - {from: shop/#, lateness: 1d, dedupe: {field: id, within: 2w}}
rules:
  - name: w
    from: shop/orders
    cooldown: 1d12h
    window: {hopping: 2w, every: 1d}
    aggregate: {n: count()}
  - name: s
    from: shop/orders
    window: {sliding: 7d}
    aggregate: {n: count()}
  - name: ab
    from: shop/orders
    absent: 1d
  - name: p
    from: shop/orders
    pattern:
      - {as: a}
      - {as: b, within: 1w}
  - name: z
    from: shop/orders
    detect: {field: x, method: zscore, window: 1d}
`)
	if errs != nil {
		t.Fatal(errs)
	}
	const day = 24 * time.Hour
	r := set.Rules
	if r[0].Cooldown != 36*time.Hour || r[0].WindowSpec.Size != 14*day || r[0].WindowSpec.Every != day || r[0].Lateness != day {
		t.Errorf("rule w: cooldown %v, window %+v, lateness %v", r[0].Cooldown, r[0].WindowSpec, r[0].Lateness)
	}
	if r[1].WindowSpec.Size != 7*day {
		t.Errorf("rule s: window %+v", r[1].WindowSpec)
	}
	if r[2].AbsentFor != day {
		t.Errorf("rule ab: absent %v", r[2].AbsentFor)
	}
	if r[3].Steps[1].Within != 7*day {
		t.Errorf("rule p: within %v", r[3].Steps[1].Within)
	}
	if set.Sources[0].DedupeFor != 14*day {
		t.Errorf("source dedupe %v", set.Sources[0].DedupeFor)
	}
	c, err := ParseConfig("vigil.yaml", []byte("state: {checkpoint_every: 1d, history: 2w}\nlimits: {grace: 1d, max_future: 1w}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.State.CheckpointEvery != day || c.State.History != 14*day || c.Limits.Grace != day || c.Limits.MaxFuture != 7*day {
		t.Errorf("config state %+v limits %+v", c.State, c.Limits)
	}
}

func TestHashIgnoresLayout(t *testing.T) {
	a, _ := parseT(t, "rules:\n  - name: a\n    from: x\n    where: v > 1 # hot\n")
	b, _ := parseT(t, "rules:\n- {name: a, from: x, where: v > 1}\n")
	c, _ := parseT(t, "rules:\n- {name: a, from: x, where: v > 2}\n")
	if a.Rules[0].Hash != b.Rules[0].Hash || a.Rules[0].Hash == c.Rules[0].Hash {
		t.Fatalf("hashes %s %s %s", a.Rules[0].Hash, b.Rules[0].Hash, c.Rules[0].Hash)
	}
}

func TestTemplate(t *testing.T) {
	set, errs := parseT(t, "rules:\n  - name: a\n    from: x\n    message: \"v={{v}} f={{f}} s={{s}} n={{missing}} t={{time}} bad={{ v / s }}\"\n")
	if errs != nil {
		t.Fatal(errs)
	}
	got, err := set.Rules[0].Message.Render(expr.Env{Vars: map[string]any{"v": 3.0, "f": 1.0 / 3, "s": "x", "time": time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)}})
	if err == nil || got != "v=3 f=0.333333 s=x n= t=2026-01-05T10:00:00Z bad=<error>" {
		t.Fatalf("render %q, %v", got, err)
	}
}

func TestUpstreamTopic(t *testing.T) {
	for _, c := range []struct{ tmpl, gw, key, want string }{
		{"v/{gateway}/{rule}/{key}/{severity}", "gw", "a/b#+", "v/gw/r/a_b__/info"},
		{"alerts", "gw", "k", "alerts"},
		{"{key}{key}/{rule}", "gw", "k\x00", "kk/r"},
		{"x/{unknown}/{gateway", "g/w", "k", "x/{unknown}/{gateway"},
		{"{gateway}/{", "a+b", "k", "a_b/{"},
		{"", "gw", "k", ""},
	} {
		if got := UpstreamTopic(c.tmpl, c.gw, "r", c.key, "info"); got != c.want {
			t.Errorf("UpstreamTopic(%q, %q, key %q) = %q, want %q", c.tmpl, c.gw, c.key, got, c.want)
		}
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(p, []byte("gateway: g\nstate: {path: s.db, journal: false}\nrules: [r1, /abs/r2]\nupstream: {qos: 0}\n"), 0o644)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Path != filepath.Join(dir, "s.db") || c.State.Journal || c.Rules[0] != filepath.Join(dir, "r1") || c.Rules[1] != "/abs/r2" ||
		c.Upstream.QoS != 0 || c.MQTT.ClientID != "vigil-g" || c.HTTP.Listen != "127.0.0.1:8080" || c.State.CheckpointEvery != 10*time.Second {
		t.Fatalf("config %+v", c)
	}
	if !IsConfig([]byte("rules: /etc/x\n")) || IsConfig([]byte("rules:\n  - name: a\n")) {
		t.Fatal("IsConfig")
	}
}

// FuzzParse: the loader never panics, and a file it accepts compiles into
// rules whose expressions can run on an empty event.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../testdata/check/contract.good.yaml", "../testdata/check/rule_errors.bad.yaml", "../testdata/check/budget.bad.yaml", "../examples/demo-rules.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("rules:\n  - {name: a, from: \"x/{d}\", where: d == \"1\", window: {count: 2}, aggregate: {n: count()}}\n"))
	f.Add([]byte("rules: &a [*a]\n"))
	f.Add([]byte("rules:\n  - name: a\n    from: x\n    message: \"{{ {{ }}\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		set, err := Parse([]string{"f.yaml"}, map[string][]byte{"f.yaml": src})
		if err != nil {
			if AsErrors(err) == nil {
				t.Fatalf("error without positions: %v", err)
			}
			return
		}
		env := expr.Env{Vars: map[string]any{"topic": "x", "time": time.Unix(0, 0)}}
		for _, r := range set.Rules {
			if r.Where != nil {
				r.Where.Bool(env)
			}
			if r.Message != nil {
				r.Message.Render(env)
			}
		}
	})
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
		c, err := ParseConfig("vigil.yaml", []byte(tc.src))
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if c.MQTT.InProcess != tc.inProcess || c.MQTT.Broker != tc.mqttBroker {
			t.Errorf("%q: in-process %v, mqtt broker %q; want %v, %q", tc.src, c.MQTT.InProcess, c.MQTT.Broker, tc.inProcess, tc.mqttBroker)
		}
	}
}

// TestConfigJournalMax: state.journal_max is a size in bytes with an
// optional unit, at least 1MiB; 256MiB when left out.
func TestConfigJournalMax(t *testing.T) {
	for src, want := range map[string]int64{
		"gateway: g\n":                     256 << 20,
		"state: {journal_max: 64MiB}\n":    64 << 20,
		"state: {journal_max: 2GB}\n":      2e9,
		"state: {journal_max: 5000000}\n":  5e6,
		"state: {journal_max: 1 GiB}\n":    1 << 30,
		"state: {journal_max: 1048576B}\n": 1 << 20,
	} {
		c, err := ParseConfig("vigil.yaml", []byte(src))
		if err != nil || c.State.JournalMax != want {
			t.Errorf("%q: %v %v, want %d", src, c, err, want)
		}
	}
	for src, msg := range map[string]string{
		"state:\n  journal_max: 10KB\n": "vigil.yaml:2:16: state: journal_max: at least 1MiB, got 10000 bytes",
		"state:\n  journal_max: lots\n": `vigil.yaml:2:16: state: journal_max: bad size "lots"`,
		"state:\n  journal_max: -5MB\n": `vigil.yaml:2:16: state: journal_max: bad size "-5MB"`,
	} {
		if _, err := ParseConfig("vigil.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %s", src, err, msg)
		}
	}
}

// TestConfigCheckpointMessages: state.checkpoint_messages, 10,000 when
// left out.
func TestConfigCheckpointMessages(t *testing.T) {
	c, err := ParseConfig("vigil.yaml", []byte("state: {checkpoint_messages: 1}\n"))
	if err != nil || c.State.CheckpointMessages != 1 {
		t.Fatalf("%+v %v", c.State, err)
	}
	if c, err := ParseConfig("vigil.yaml", []byte("gateway: g\n")); err != nil || c.State.CheckpointMessages != 10000 {
		t.Fatalf("default: %+v %v", c.State, err)
	}
}

// TestConfigIngestLimits: limits.max_topic_length and limits.max_payload,
// 256 and 64 KiB when left out.
func TestConfigIngestLimits(t *testing.T) {
	c, err := ParseConfig("vigil.yaml", []byte("limits: {max_topic_length: 100, max_payload: 4KiB}\n"))
	if err != nil || c.Limits.MaxTopic != 100 || c.Limits.MaxPayload != 4096 {
		t.Fatalf("%+v %v", c.Limits, err)
	}
	if c, err := ParseConfig("vigil.yaml", []byte("gateway: g\n")); err != nil || c.Limits.MaxTopic != 256 || c.Limits.MaxPayload != 64<<10 {
		t.Fatalf("defaults: %+v %v", c.Limits, err)
	}
	if _, err := ParseConfig("vigil.yaml", []byte("limits:\n  max_topic_length: 70000\n")); err == nil ||
		!strings.Contains(err.Error(), "vigil.yaml:2:21: limits: max_topic_length: at most 65535") {
		t.Fatalf("too long: %v", err)
	}
}

// TestConfigCommitGap: state.commit_gap is a duration up to 1s;
// DefaultCommitGap when left out; 0 when set so (a commit per message).
func TestConfigCommitGap(t *testing.T) {
	c, err := ParseConfig("vigil.yaml", []byte("state: {commit_gap: 2ms}\n"))
	if err != nil || c.State.CommitGap != 2*time.Millisecond {
		t.Fatalf("commit_gap: %v %v", c, err)
	}
	if c, err := ParseConfig("vigil.yaml", []byte("gateway: g\n")); err != nil || c.State.CommitGap != DefaultCommitGap {
		t.Fatalf("default: %v %v", c.State.CommitGap, err)
	}
	if c, err := ParseConfig("vigil.yaml", []byte("state: {commit_gap: 0s}\n")); err != nil || c.State.CommitGap != 0 {
		t.Fatalf("explicit 0: %v %v", c.State.CommitGap, err)
	}
	_, err = ParseConfig("vigil.yaml", []byte("state:\n  commit_gap: 5s\n"))
	if err == nil || !strings.Contains(err.Error(), "vigil.yaml:2:15: state: commit_gap: at most 1s") {
		t.Fatalf("too long: %v", err)
	}
}

// TestConfigBroker: the embedded broker's keys, with line:col errors; a
// listener beyond loopback needs users and TLS (or allow_plaintext).
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
	c, err := ParseConfig("/etc/vigil/vigil.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := BrokerConfig{Listen: "0.0.0.0:8883", UsersFile: "/etc/vigil/broker.users",
		TLS:           TLSConfig{Cert: "/etc/vigil/s.pem", Key: "/etc/vigil/s.key"},
		MaxPacketSize: 65536, MaxClients: 50, MaxClientsPerAddress: 5, ConnectTimeout: 3 * time.Second,
		MaxSessionExpiry: 2 * time.Hour, MaxSessions: 70, MaxInflight: 1000, MaxRetained: 10, MaxSubscriptions: 20, MaxLoginFailures: 4}
	if c.Broker != want {
		t.Fatalf("broker %+v\nwant   %+v", c.Broker, want)
	}
	for _, tc := range []struct{ src, want string }{
		{"broker: {listen: \"0.0.0.0:1883\", users_file: u}\n", "vigil.yaml:1:10: broker: listening on 0.0.0.0:1883 (not loopback) without tls"},
		{"broker: {listen: \"0.0.0.0:1883\", tls: {cert: c, key: k}}\n", "vigil.yaml:1:10: broker: listening on 0.0.0.0:1883 (not loopback) requires users_file"},
		{"broker: {listen: \"127.0.0.1:1883\", max_inflight: 65536}\n", "vigil.yaml:1:50: broker: max_inflight: want 1 to 65535, got 65536"},
		{"broker: {listen: \"127.0.0.1:1883\", max_clients: -3}\n", "broker: max_clients: want a whole number >= 1"},
	} {
		_, err := ParseConfig("vigil.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
	c, err = ParseConfig("vigil.yaml", []byte("broker: {listen: \"0.0.0.0:1883\", users_file: u, allow_plaintext: true}\n"))
	if err != nil || !c.Broker.AllowPlaintext {
		t.Fatalf("allow_plaintext: %+v %v", c.Broker, err)
	}
}

// TestConfigUpstreamLimits: upstream.max_alert_bytes (at least 1024) and
// upstream.dead_after; 0 (the store's and forwarder's defaults) when left
// out.
func TestConfigUpstreamLimits(t *testing.T) {
	c, err := ParseConfig("vigil.yaml", []byte("upstream: {max_alert_bytes: 2048, dead_after: 3}\n"))
	if err != nil || c.Upstream.MaxAlertBytes != 2048 || c.Upstream.DeadAfter != 3 {
		t.Fatalf("%+v %v", c.Upstream, err)
	}
	if c, err := ParseConfig("vigil.yaml", []byte("gateway: g\n")); err != nil || c.Upstream.MaxAlertBytes != 0 || c.Upstream.DeadAfter != 0 {
		t.Fatalf("default: %+v %v", c.Upstream, err)
	}
	_, err = ParseConfig("vigil.yaml", []byte("upstream:\n  max_alert_bytes: 100\n"))
	if err == nil || !strings.Contains(err.Error(), "vigil.yaml:2:20: upstream: max_alert_bytes: at least 1024, got 100") {
		t.Fatalf("too small: %v", err)
	}
	_, err = ParseConfig("vigil.yaml", []byte("upstream:\n  dead_after: 0\n"))
	if err == nil || !strings.Contains(err.Error(), "vigil.yaml:2:15: upstream: dead_after: want a whole number >= 1") {
		t.Fatalf("zero: %v", err)
	}
}

// TestConfigFleet: the fleet block's defaults, paths relative to the
// config, and its errors with positions.
func TestConfigFleet(t *testing.T) {
	c, err := ParseConfig("/etc/vigil/vigil.yaml", []byte("upstream: {broker: \"tcp://site:1883\"}\nstate: {path: /var/lib/vigil/vigil.db}\nfleet: {public_keys: [fleet.pub]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Fleet
	if !f.Enabled || f.Prefix != "vigil" || f.RulesDir != "/var/lib/vigil/fleet-rules" || f.HealthEvery != 30*time.Second ||
		len(f.PublicKeys) != 1 || f.PublicKeys[0] != "/etc/vigil/fleet.pub" || f.KeyPos[0] != (Pos{"/etc/vigil/vigil.yaml", 3, 23}) {
		t.Fatalf("fleet %+v", f)
	}
	if c, _ := ParseConfig("vigil.yaml", []byte("gateway: g\n")); c.Fleet.Enabled {
		t.Fatal("fleet enabled without the block")
	}
	if !IsConfig([]byte("fleet: {}\n")) {
		t.Fatal("IsConfig: a fleet block")
	}
	for _, tc := range []struct{ src, want string }{
		{"fleet: {prefix: site}\n", "vigil.yaml:1:1: fleet: needs upstream.broker"},
		{"upstream: {broker: \"tcp://h:1\"}\nfleet:\n  prefix: \"a/#\"\n", "vigil.yaml:3:11: fleet: prefix \"a/#\""},
		{"upstream: {broker: \"tcp://h:1\"}\nfleet:\n  health_every: 10ms\n", "vigil.yaml:3:17: fleet: health_every: at least 1s"},
		{"upstream: {broker: \"tcp://h:1\"}\nfleet:\n  public_key: [a]\n", "vigil.yaml:3:3: fleet: unknown key \"public_key\""},
	} {
		_, err := ParseConfig("vigil.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.src, err, tc.want)
		}
	}
}
