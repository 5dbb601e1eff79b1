package config

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/vigil-gw/vigil/rules"
)

// intRanges bound numbers beyond "a whole number >= 1" (the broker's are
// what broker.New accepts; checked here to say where).
var intRanges = []struct {
	path     string
	min, max int64
}{
	{"broker.max_packet_size", 128, 268435455},
	{"broker.max_clients", 1, math.MaxInt32},
	{"broker.max_clients_per_address", 1, math.MaxInt32},
	{"broker.max_sessions", 1, math.MaxInt32},
	{"broker.max_inflight", 1, math.MaxUint16},
	{"broker.max_retained", 1, math.MaxInt32},
	{"broker.max_subscriptions", 1, math.MaxInt32},
	{"broker.max_login_failures", 1, math.MaxInt32},
}

// check holds the decoded settings to what vigil can run with, reporting
// each problem at the value the file sets, and makes the file names
// relative to the config file's directory.
func (d *decoder) check(c *Config) {
	root := valueOf(c)
	for _, r := range intRanges {
		if v := fieldAt(root, r.path).Int(); d.seen(r.path) && (v < r.min || v > r.max) {
			d.errf(d.vals[r.path], "%s: want %d to %d, got %d", what(r.path), r.min, r.max, v)
		}
	}
	if d.seen("gateway") && strings.ContainsAny(c.Gateway, "/+#") {
		d.errf(d.vals["gateway"], "gateway: %q must not contain / + or #", c.Gateway)
	}
	d.brokerURL("mqtt.broker", c.MQTT.Broker)
	d.brokerURL("upstream.broker", c.Upstream.Broker)
	if d.seen("upstream.topic") {
		if err := rules.CheckTopicTemplate(c.Upstream.Topic); err != nil {
			d.errf(d.vals["upstream.topic"], "upstream: topic: %v", err)
		}
	}
	if d.seen("upstream.qos") && c.Upstream.QoS > 1 {
		d.errf(d.vals["upstream.qos"], "upstream: qos: want 0 or 1, got %q", fmt.Sprint(c.Upstream.QoS))
	}
	if v := c.Upstream.MaxAlertBytes; d.seen("upstream.max_alert_bytes") && v < 1024 {
		d.errf(d.vals["upstream.max_alert_bytes"], "upstream: max_alert_bytes: at least 1024, got %d", v)
	}
	if v := c.State.JournalMax; d.seen("state.journal_max") && v < 1<<20 {
		d.errf(d.vals["state.journal_max"], "state: journal_max: at least 1MiB, got %d bytes", v)
	}
	if v := c.State.CommitGap; d.seen("state.commit_gap") && v > time.Second {
		d.errf(d.vals["state.commit_gap"], "state: commit_gap: at most 1s, got %s (every message waits up to this long before it is journaled)", v)
	}
	if v := c.Limits.MaxTopic; d.seen("limits.max_topic_length") && v > 65535 {
		d.errf(d.vals["limits.max_topic_length"], "limits: max_topic_length: at most 65535 (MQTT's own limit), got %d", v)
	}
	if v := c.Limits.MaxPayload; d.seen("limits.max_payload") && v > 256<<20 {
		d.errf(d.vals["limits.max_payload"], "limits: max_payload: at most 256MiB (MQTT's own limit), got %d bytes", v)
	}
	if d.seen("log.level") {
		switch c.Log.Level {
		case "debug", "info", "warn", "error":
		default:
			d.errf(d.vals["log.level"], "log: level %q: want debug, info, warn or error", c.Log.Level)
		}
	}
	d.checkHTTP(c)
	d.checkBroker(c)
	d.checkFleet(c)
	d.files(c)
}

func (d *decoder) checkHTTP(c *Config) {
	if !d.seen("http.listen") || c.HTTP.Listen == "off" {
		return
	}
	if !d.listen("http.listen", c.HTTP.Listen) {
		return
	}
	if !IsLoopback(c.HTTP.Listen) && c.HTTP.TokenFile == "" {
		d.errf(d.vals["http"], "http: listening on %s (not loopback) requires token_file", c.HTTP.Listen)
	}
}

func (d *decoder) checkBroker(c *Config) {
	b := c.Broker
	if v := b.Limits.MaxSessionExpiry; d.seen("broker.max_session_expiry") && (v < time.Second || v > math.MaxUint32*time.Second) {
		d.errf(d.vals["broker.max_session_expiry"], "broker: max_session_expiry: want 1s to 136y, got %s", d.Unwrap(d.vals["broker.max_session_expiry"]).GetToken().Value)
	}
	if !d.seen("broker.listen") || !d.listen("broker.listen", b.Listen) || IsLoopback(b.Listen) {
		return
	}
	if b.UsersFile == "" {
		d.errf(d.vals["broker"], "broker: listening on %s (not loopback) requires users_file: an open broker on the network accepts anyone", b.Listen)
	}
	if !b.TLS.Enabled() && !b.AllowPlaintext {
		d.errf(d.vals["broker"], "broker: listening on %s (not loopback) without tls: passwords and readings would cross the network in clear; configure tls: {cert, key}, or set allow_plaintext: true to accept that", b.Listen)
	}
}

func (d *decoder) checkFleet(c *Config) {
	f := c.Fleet
	if !f.Enabled {
		return
	}
	if p := f.Prefix; d.seen("fleet.prefix") && (strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.HasPrefix(p, "$")) {
		d.errf(d.vals["fleet.prefix"], "fleet: prefix %q: want topic levels without + # and no leading or trailing /", p)
	}
	if v := f.HealthEvery; d.seen("fleet.health_every") && v < time.Second {
		d.errf(d.vals["fleet.health_every"], "fleet: health_every: at least 1s, got %s", v)
	}
	if c.Upstream.Broker == "" {
		d.errf(d.keys["fleet"], "fleet: needs upstream.broker: status, health and rule bundles go over the upstream connection")
	}
}

// files makes the file names relative to the config file's directory, and
// refuses a secret that others may read.
func (d *decoder) files(c *Config) {
	dir := filepath.Dir(c.File)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for _, f := range []struct {
		path   string
		p      *string
		secret bool
	}{
		{"state.path", &c.State.Path, false},
		{"fleet.rules_dir", &c.Fleet.RulesDir, false},
		{"mqtt.password_file", &c.MQTT.PasswordFile, true},
		{"upstream.password_file", &c.Upstream.PasswordFile, true},
		{"broker.users_file", &c.Broker.UsersFile, true},
		{"http.token_file", &c.HTTP.TokenFile, true},
		{"mqtt.tls.ca", &c.MQTT.TLS.CA, false},
		{"mqtt.tls.cert", &c.MQTT.TLS.Cert, false},
		{"mqtt.tls.key", &c.MQTT.TLS.Key, true},
		{"upstream.tls.ca", &c.Upstream.TLS.CA, false},
		{"upstream.tls.cert", &c.Upstream.TLS.Cert, false},
		{"upstream.tls.key", &c.Upstream.TLS.Key, true},
		{"broker.tls.ca", &c.Broker.TLS.CA, false},
		{"broker.tls.cert", &c.Broker.TLS.Cert, false},
		{"broker.tls.key", &c.Broker.TLS.Key, true},
	} {
		if !d.seen(f.path) {
			continue
		}
		*f.p = rel(*f.p)
		if msg := CheckSecretFile(*f.p); f.secret && msg != "" {
			d.errf(d.vals[f.path], "%s: %s", what(f.path), msg)
		}
	}
	for _, sec := range []string{"mqtt.tls", "upstream.tls", "broker.tls"} {
		t := fieldAt(valueOf(c), sec).Interface().(TLS)
		if (t.Cert == "") != (t.Key == "") {
			d.errf(d.vals[sec], "%s: cert and key go together", what(sec))
		}
	}
	for i := range c.Rules {
		c.Rules[i] = rel(c.Rules[i])
	}
	for i, n := range d.items["fleet.public_keys"] {
		c.Fleet.PublicKeys[i] = rel(c.Fleet.PublicKeys[i])
		c.Fleet.KeyPos = append(c.Fleet.KeyPos, d.Pos(n))
	}
}

// brokerURL checks a broker's URL, if the file sets one.
func (d *decoder) brokerURL(path, v string) {
	if !d.seen(path) || v == "" {
		return
	}
	scheme, _, ok := strings.Cut(v, "://")
	if !ok {
		d.errf(d.vals[path], "%s: %q: want scheme://host:port (tcp, ssl, tls, ws or wss)", what(path), v)
		return
	}
	switch scheme {
	case "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss":
	default:
		d.errf(d.vals[path], "%s: unknown scheme %q (want tcp, ssl, tls, ws or wss)", what(path), scheme)
	}
}

// listen checks a listen address.
func (d *decoder) listen(path, v string) bool {
	if _, _, err := net.SplitHostPort(v); err != nil {
		d.errf(d.vals[path], "%s: %q: want host:port", what(path), v)
		return false
	}
	return true
}

// fieldAt is the field of root a setting's path names.
func fieldAt(root reflect.Value, path string) reflect.Value {
	v := root
	for _, k := range strings.Split(path, ".") {
		v = v.FieldByIndex(fieldsOf(v.Type())[k])
	}
	return v
}

// CheckSecretFile returns why the secret file at path is refused, or ""
// (also when it cannot be examined: reading it will say why).
func CheckSecretFile(path string) string {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return ""
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Sprintf("%s is readable or writable by group or others (mode %04o): a secret must be for vigil's user only: chmod 600 %s", path, perm, path)
	}
	return ""
}

// IsLoopback reports whether a listen address only accepts local
// connections.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsConfig tells a daemon config from a rule file: a config's `rules:` is a
// path, a rule file's is a list.
func IsConfig(src []byte) bool {
	d := newDecoder("")
	m, ok := d.Unwrap(d.Parse(src)).(*ast.MappingNode)
	if !ok {
		return false
	}
	top := fieldsOf(reflect.TypeOf(Config{}))
	for _, mv := range m.Values {
		k := d.keyOf(mv.Key)
		if k == "rules" {
			if _, isList := d.Unwrap(mv.Value).(*ast.SequenceNode); !isList {
				return true
			}
			continue
		}
		if _, ok := top[k]; ok {
			return true
		}
	}
	return false
}
