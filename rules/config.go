package rules

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Config is the daemon's vigil.yaml. The zero value of every section works:
// defaults are filled by LoadConfig.
type Config struct {
	File     string
	Gateway  string
	MQTT     MQTTConfig
	Broker   BrokerConfig
	Upstream UpstreamConfig
	State    StateConfig
	Rules    []string // files or directories, relative to the config file
	HTTP     HTTPConfig
	Limits   LimitsConfig
	Log      LogConfig
	Fleet    FleetConfig
}

// TLSConfig names PEM files; relative paths are relative to the config file.
type TLSConfig struct {
	CA, Cert, Key string
	// InsecureSkipVerify is for tests only; it is not read from files.
}

// Enabled reports whether any TLS file is configured.
func (t TLSConfig) Enabled() bool { return t.CA != "" || t.Cert != "" || t.Key != "" }

type MQTTConfig struct {
	Broker       string // default tcp://127.0.0.1:1883, or the embedded broker
	ClientID     string // default vigil-<gateway>
	Username     string
	PasswordFile string
	TLS          TLSConfig
	Queue        int // bounded ingest queue, default 10000
	// InProcess is derived, not read: broker omitted with an embedded
	// broker configured. vigil then takes the embedded broker's messages
	// in-process instead of subscribing to it over loopback.
	InProcess bool
}

type BrokerConfig struct {
	Listen    string // empty: no embedded broker
	UsersFile string // NAME:BCRYPT:ROLE[:PREFIX] lines (vigil passwd); required when Listen is not loopback
	TLS       TLSConfig
	// AllowPlaintext lets a broker that listens beyond loopback do so
	// without TLS (refused otherwise).
	AllowPlaintext bool
	// The limits (broker.Limits); 0 takes the broker's default.
	MaxPacketSize        int
	MaxClients           int
	MaxClientsPerAddress int
	ConnectTimeout       time.Duration
	MaxSessionExpiry     time.Duration
	MaxSessions          int
	MaxInflight          int
	MaxRetained          int
	MaxSubscriptions     int
	MaxLoginFailures     int
}

type UpstreamConfig struct {
	Broker       string // empty: alerts stay in the outbox and history
	Topic        string // default vigil/{gateway}/alerts/{rule}
	QoS          int    // default 1
	ClientID     string // default vigil-<gateway>-up
	Username     string
	PasswordFile string
	TLS          TLSConfig
	// MaxAlertBytes caps an alert's JSON form (default 16 KiB): a larger
	// one is stored trimmed. DeadAfter is how many rounds in a row
	// upstream may refuse one alert before it is set aside (default 5).
	MaxAlertBytes int
	DeadAfter     int
}

type StateConfig struct {
	Path            string        // default ./vigil.db
	CheckpointEvery time.Duration // default 10s
	// CheckpointMessages: a checkpoint is taken (every CheckpointEvery)
	// once this many messages have been journaled since the last one, or
	// 5 minutes after it (default 10,000; 1: every CheckpointEvery).
	CheckpointMessages int
	Journal            bool          // default true
	OutboxMax          int           // default 100000
	History            time.Duration // retention, default 720h
	// CommitGap is the shortest time between journal commits
	// (DefaultCommitGap unless set; at most 1s): messages arriving sooner
	// after a commit wait for the others of that gap, so the disk sees at
	// most 1/CommitGap syncs a second whatever the rate. 0: a commit as
	// soon as the last one ends, whatever has arrived meanwhile.
	CommitGap time.Duration
	// JournalMax bounds the input journal's files in bytes (default
	// 256 MiB): reached only when checkpoints keep failing; then QoS 1
	// messages wait unacknowledged and QoS 0 ones are dropped, counted.
	JournalMax int64
}

type HTTPConfig struct {
	Listen    string // default 127.0.0.1:8080; "off" disables
	TokenFile string
}

type LimitsConfig struct {
	// MaxTopic and MaxPayload cap a message's topic and payload, in bytes,
	// before it is queued or journaled (default 256 and 64 KiB): larger
	// ones are acknowledged, dropped and counted.
	MaxTopic   int
	MaxPayload int
	MaxKeys    int           // per rule, default 10000
	Grace      time.Duration // wall-clock grace before windows close on the gateway clock, default 5s
	MaxFuture  time.Duration // drop events stamped further ahead of their receipt, default 1h
}

// FleetConfig is the `fleet:` block: pushed rule bundles, status and health
// over the upstream connection (docs/fleet.md).
type FleetConfig struct {
	Enabled     bool     // the block is present
	Prefix      string   // topic prefix, default vigil
	RulesDir    string   // the last good bundle; default fleet-rules beside state.path
	PublicKeys  []string // PEM public keys; none: every bundle is refused
	KeyPos      []Pos    // where each of PublicKeys is written, for vigil check
	HealthEvery time.Duration
}

type LogConfig struct {
	Level string // debug, info (default), warn, error
}

// DefaultCommitGap is state.commit_gap's default: at most 20 journal commits
// (and fsyncs) a second, for at most 50 ms more before a QoS 1 message is
// acknowledged (docs/operations.md, "SD card").
const DefaultCommitGap = 50 * time.Millisecond

// DefaultConfig is the config with every default filled.
func DefaultConfig() *Config {
	c := &Config{}
	c.State.Journal = true
	c.State.CommitGap = DefaultCommitGap
	c.fill()
	return c
}

func (c *Config) fill() {
	if c.Gateway == "" {
		h, _ := os.Hostname()
		if h == "" {
			h = "gateway"
		}
		c.Gateway = h
	}
	if c.MQTT.Broker == "" {
		if c.Broker.Listen != "" {
			c.MQTT.InProcess = true
			c.MQTT.Broker = "tcp://" + c.Broker.Listen
		} else {
			c.MQTT.Broker = "tcp://127.0.0.1:1883"
		}
	}
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = "vigil-" + c.Gateway
	}
	if c.MQTT.Queue == 0 {
		c.MQTT.Queue = 10000
	}
	if c.Upstream.Topic == "" {
		c.Upstream.Topic = "vigil/{gateway}/alerts/{rule}"
	}
	if c.Upstream.QoS == 0 {
		c.Upstream.QoS = 1
	}
	if c.Upstream.ClientID == "" {
		c.Upstream.ClientID = c.MQTT.ClientID + "-up"
	}
	if c.State.Path == "" {
		c.State.Path = "vigil.db"
	}
	if c.State.CheckpointEvery == 0 {
		c.State.CheckpointEvery = 10 * time.Second
	}
	if c.State.CheckpointMessages == 0 {
		c.State.CheckpointMessages = 10000
	}
	if c.State.JournalMax == 0 {
		c.State.JournalMax = 256 << 20
	}
	if c.State.OutboxMax == 0 {
		c.State.OutboxMax = 100000
	}
	if c.State.History == 0 {
		c.State.History = 30 * 24 * time.Hour
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if c.Limits.MaxTopic == 0 {
		c.Limits.MaxTopic = 256
	}
	if c.Limits.MaxPayload == 0 {
		c.Limits.MaxPayload = 64 << 10
	}
	if c.Limits.MaxKeys == 0 {
		c.Limits.MaxKeys = 10000
	}
	if c.Limits.Grace == 0 {
		c.Limits.Grace = 5 * time.Second
	}
	if c.Limits.MaxFuture == 0 {
		c.Limits.MaxFuture = time.Hour
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Fleet.Enabled {
		if c.Fleet.Prefix == "" {
			c.Fleet.Prefix = "vigil"
		}
		if c.Fleet.RulesDir == "" {
			c.Fleet.RulesDir = filepath.Join(filepath.Dir(c.State.Path), "fleet-rules")
		}
		if c.Fleet.HealthEvery == 0 {
			c.Fleet.HealthEvery = 30 * time.Second
		}
	}
}

// IsConfig tells a daemon config from a rule file: a config's `rules:` is a
// path, a rule file's is a list.
func IsConfig(src []byte) bool {
	var errs Errors
	root, d := parseYAML("", src, &errs)
	m, ok := d.unwrap(root).(*ast.MappingNode)
	if !ok {
		return false
	}
	for _, mv := range m.Values {
		k := d.unwrap(mv.Key).String()
		switch k {
		case "gateway", "mqtt", "broker", "upstream", "state", "http", "limits", "log", "fleet":
			return true
		case "rules":
			_, isList := d.unwrap(mv.Value).(*ast.SequenceNode)
			if !isList {
				return true
			}
		}
	}
	return false
}

// LoadConfig reads and validates vigil.yaml; every problem is reported.
func LoadConfig(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{Pos{path, 1, 1}, fmt.Sprintf("read: %v", err)}}
	}
	return ParseConfig(path, src)
}

// ParseConfig validates a config given as contents.
func ParseConfig(path string, src []byte) (*Config, error) {
	var errs Errors
	c := &Config{File: path}
	c.State.CommitGap = DefaultCommitGap // unless the file sets it
	root, d := parseYAML(path, src, &errs)
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	fs, _ := d.fields(root, "config", "gateway", "mqtt", "broker", "upstream", "state", "rules", "http", "limits", "log", "fleet")
	var fleetNode yamlNode
	for _, f := range fs {
		switch f.key {
		case "gateway":
			c.Gateway, _ = d.str(f.val, "gateway")
			if strings.ContainsAny(c.Gateway, "/+#") {
				d.errf(f.val, "gateway: %q must not contain / + or #", c.Gateway)
			}
		case "mqtt":
			sub, _ := d.fields(f.val, "mqtt", "broker", "client_id", "username", "password_file", "tls", "queue")
			for _, s := range sub {
				switch s.key {
				case "broker":
					c.MQTT.Broker = d.brokerURL(s.val, "mqtt: broker")
				case "client_id":
					c.MQTT.ClientID, _ = d.str(s.val, "mqtt: client_id")
				case "username":
					c.MQTT.Username, _ = d.str(s.val, "mqtt: username")
				case "password_file":
					c.MQTT.PasswordFile = d.secretFile(s.val, "mqtt: password_file", rel)
				case "tls":
					c.MQTT.TLS = d.tls(s.val, "mqtt: tls", rel)
				case "queue":
					c.MQTT.Queue, _ = d.integer(s.val, "mqtt: queue")
				}
			}
		case "broker":
			d.brokerSection(f.val, &c.Broker, rel)
		case "upstream":
			sub, _ := d.fields(f.val, "upstream", "broker", "topic", "qos", "client_id", "username", "password_file", "tls",
				"max_alert_bytes", "dead_after")
			for _, s := range sub {
				switch s.key {
				case "broker":
					c.Upstream.Broker = d.brokerURL(s.val, "upstream: broker")
				case "topic":
					c.Upstream.Topic, _ = d.str(s.val, "upstream: topic")
					if err := CheckTopicTemplate(c.Upstream.Topic); err != nil {
						d.errf(s.val, "upstream: topic: %v", err)
					}
				case "qos":
					v, _ := d.scalar(s.val, "upstream: qos")
					switch v {
					case "0":
						c.Upstream.QoS = -1 // explicit 0, kept apart from "unset"
					case "1":
						c.Upstream.QoS = 1
					default:
						d.errf(s.val, "upstream: qos: want 0 or 1, got %q", v)
					}
				case "client_id":
					c.Upstream.ClientID, _ = d.str(s.val, "upstream: client_id")
				case "username":
					c.Upstream.Username, _ = d.str(s.val, "upstream: username")
				case "password_file":
					c.Upstream.PasswordFile = d.secretFile(s.val, "upstream: password_file", rel)
				case "tls":
					c.Upstream.TLS = d.tls(s.val, "upstream: tls", rel)
				case "max_alert_bytes":
					if v, ok := d.integer(s.val, "upstream: max_alert_bytes"); ok && v < 1024 {
						d.errf(s.val, "upstream: max_alert_bytes: at least 1024, got %d", v)
					} else {
						c.Upstream.MaxAlertBytes = v
					}
				case "dead_after":
					c.Upstream.DeadAfter, _ = d.integer(s.val, "upstream: dead_after")
				}
			}
		case "state":
			sub, _ := d.fields(f.val, "state", "path", "checkpoint_every", "journal", "outbox_max", "history", "commit_gap", "journal_max", "checkpoint_messages")
			for _, s := range sub {
				switch s.key {
				case "path":
					p, _ := d.str(s.val, "state: path")
					c.State.Path = rel(p)
				case "checkpoint_every":
					c.State.CheckpointEvery, _ = d.duration(s.val, "state: checkpoint_every")
				case "journal":
					v, ok := d.boolean(s.val, "state: journal")
					if ok && !v {
						c.State.Journal = false
					}
				case "outbox_max":
					c.State.OutboxMax, _ = d.integer(s.val, "state: outbox_max")
				case "history":
					c.State.History, _ = d.duration(s.val, "state: history")
				case "checkpoint_messages":
					c.State.CheckpointMessages, _ = d.integer(s.val, "state: checkpoint_messages")
				case "journal_max":
					if v, ok := d.size(s.val, "state: journal_max"); ok {
						if v < 1<<20 {
							d.errf(s.val, "state: journal_max: at least 1MiB, got %d bytes", v)
						}
						c.State.JournalMax = v
					}
				case "commit_gap":
					if v, ok := d.durationOrZero(s.val, "state: commit_gap"); ok {
						if v > time.Second {
							d.errf(s.val, "state: commit_gap: at most 1s, got %s (every message waits up to this long before it is journaled)", v)
						}
						c.State.CommitGap = v
					}
				}
			}
		case "rules":
			ss, _, ok := d.strs(f.val, "rules")
			if ok {
				for _, s := range ss {
					c.Rules = append(c.Rules, rel(s))
				}
			}
		case "http":
			sub, _ := d.fields(f.val, "http", "listen", "token_file")
			for _, s := range sub {
				switch s.key {
				case "listen":
					v, _ := d.str(s.val, "http: listen")
					if v == "off" {
						c.HTTP.Listen = "off"
					} else {
						c.HTTP.Listen = d.listen(s.val, "http: listen")
					}
				case "token_file":
					c.HTTP.TokenFile = d.secretFile(s.val, "http: token_file", rel)
				}
			}
			if c.HTTP.Listen != "" && c.HTTP.Listen != "off" && !IsLoopback(c.HTTP.Listen) && c.HTTP.TokenFile == "" {
				d.errf(f.val, "http: listening on %s (not loopback) requires token_file", c.HTTP.Listen)
			}
		case "limits":
			sub, _ := d.fields(f.val, "limits", "max_keys", "grace", "max_future", "max_topic_length", "max_payload")
			for _, s := range sub {
				switch s.key {
				case "max_topic_length":
					if v, ok := d.integer(s.val, "limits: max_topic_length"); ok {
						if v > 65535 {
							d.errf(s.val, "limits: max_topic_length: at most 65535 (MQTT's own limit), got %d", v)
						}
						c.Limits.MaxTopic = v
					}
				case "max_payload":
					if v, ok := d.size(s.val, "limits: max_payload"); ok {
						if v > 256<<20 {
							d.errf(s.val, "limits: max_payload: at most 256MiB (MQTT's own limit), got %d bytes", v)
						}
						c.Limits.MaxPayload = int(v)
					}
				case "max_keys":
					c.Limits.MaxKeys, _ = d.integer(s.val, "limits: max_keys")
				case "grace":
					c.Limits.Grace, _ = d.duration(s.val, "limits: grace")
				case "max_future":
					c.Limits.MaxFuture, _ = d.duration(s.val, "limits: max_future")
				}
			}
		case "fleet":
			fleetNode = f.knode
			c.Fleet.Enabled = true
			sub, _ := d.fields(f.val, "fleet", "prefix", "rules_dir", "public_keys", "health_every")
			for _, s := range sub {
				switch s.key {
				case "prefix":
					c.Fleet.Prefix, _ = d.str(s.val, "fleet: prefix")
					if p := c.Fleet.Prefix; p == "" || strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.HasPrefix(p, "$") {
						d.errf(s.val, "fleet: prefix %q: want topic levels without + # and no leading or trailing /", p)
					}
				case "rules_dir":
					p, _ := d.str(s.val, "fleet: rules_dir")
					c.Fleet.RulesDir = rel(p)
				case "public_keys":
					ss, nodes, _ := d.strs(s.val, "fleet: public_keys")
					for i, k := range ss {
						c.Fleet.PublicKeys = append(c.Fleet.PublicKeys, rel(k))
						c.Fleet.KeyPos = append(c.Fleet.KeyPos, d.pos(nodes[i]))
					}
				case "health_every":
					if v, ok := d.duration(s.val, "fleet: health_every"); ok {
						if v < time.Second {
							d.errf(s.val, "fleet: health_every: at least 1s, got %s", v)
						}
						c.Fleet.HealthEvery = v
					}
				}
			}
		case "log":
			sub, _ := d.fields(f.val, "log", "level")
			for _, s := range sub {
				v, _ := d.str(s.val, "log: level")
				switch v {
				case "debug", "info", "warn", "error":
					c.Log.Level = v
				default:
					d.errf(s.val, "log: level %q: want debug, info, warn or error", v)
				}
			}
		}
	}
	if c.Fleet.Enabled && c.Upstream.Broker == "" {
		d.errf(fleetNode, "fleet: needs upstream.broker: status, health and rule bundles go over the upstream connection")
	}
	c.State.Journal = true
	if journalOff(d, root) {
		c.State.Journal = false
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			if errs[i].Pos.Line != errs[j].Pos.Line {
				return errs[i].Pos.Line < errs[j].Pos.Line
			}
			return errs[i].Pos.Col < errs[j].Pos.Col
		})
		return nil, errs
	}
	c.fill()
	if c.Upstream.QoS == -1 {
		c.Upstream.QoS = 0
	}
	return c, nil
}

func journalOff(d *doc, root yamlNode) bool {
	m, ok := d.unwrap(root).(*ast.MappingNode)
	if !ok {
		return false
	}
	for _, mv := range m.Values {
		if d.unwrap(mv.Key).String() != "state" {
			continue
		}
		sm, ok := d.unwrap(mv.Value).(*ast.MappingNode)
		if !ok {
			return false
		}
		for _, s := range sm.Values {
			if d.unwrap(s.Key).String() == "journal" {
				if b, ok := d.unwrap(s.Value).(*ast.BoolNode); ok {
					return !b.Value
				}
			}
		}
	}
	return false
}

func (d *doc) brokerURL(n yamlNode, what string) string {
	v, ok := d.str(n, what)
	if !ok {
		return ""
	}
	i := strings.Index(v, "://")
	if i < 0 {
		d.errf(n, "%s: %q: want scheme://host:port (tcp, ssl, tls, ws or wss)", what, v)
		return ""
	}
	switch v[:i] {
	case "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss":
	default:
		d.errf(n, "%s: unknown scheme %q (want tcp, ssl, tls, ws or wss)", what, v[:i])
	}
	return v
}

func (d *doc) listen(n yamlNode, what string) string {
	v, ok := d.str(n, what)
	if !ok {
		return ""
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		d.errf(n, "%s: %q: want host:port", what, v)
		return ""
	}
	return v
}

func (d *doc) fileRef(n yamlNode, what string) string {
	v, _ := d.str(n, what)
	return v
}

// secretFile reads the name of a file holding a secret (a password, a
// token, a private key, the broker's users) and refuses it when group or
// others may read or change it. A file that does not exist yet is left to
// whoever opens it.
func (d *doc) secretFile(n yamlNode, what string, rel func(string) string) string {
	p := rel(d.fileRef(n, what))
	if p == "" {
		return p
	}
	if msg := CheckSecretFile(p); msg != "" {
		d.errf(n, "%s: %s", what, msg)
	}
	return p
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

// brokerSection reads `broker:`, the embedded broker.
func (d *doc) brokerSection(n yamlNode, b *BrokerConfig, rel func(string) string) {
	sub, _ := d.fields(n, "broker", "listen", "users_file", "tls", "allow_plaintext",
		"max_packet_size", "max_clients", "max_clients_per_address", "connect_timeout",
		"max_session_expiry", "max_sessions", "max_inflight", "max_retained", "max_subscriptions", "max_login_failures")
	intIn := func(s field, min, max int) int {
		what := "broker: " + s.key
		v, ok := d.integer(s.val, what)
		if ok && (v < min || v > max) {
			d.errf(s.val, "%s: want %d to %d, got %d", what, min, max, v)
		}
		return v
	}
	for _, s := range sub {
		what := "broker: " + s.key
		switch s.key {
		case "listen":
			b.Listen = d.listen(s.val, what)
		case "users_file":
			b.UsersFile = d.secretFile(s.val, what, rel)
		case "tls":
			b.TLS = d.tls(s.val, "broker: tls", rel)
		case "allow_plaintext":
			b.AllowPlaintext, _ = d.boolean(s.val, what)
		case "max_packet_size":
			b.MaxPacketSize = intIn(s, 128, 268435455)
		case "max_clients":
			b.MaxClients = intIn(s, 1, 1<<31-1)
		case "max_clients_per_address":
			b.MaxClientsPerAddress = intIn(s, 1, 1<<31-1)
		case "connect_timeout":
			b.ConnectTimeout, _ = d.duration(s.val, what)
		case "max_session_expiry":
			v, ok := d.duration(s.val, what)
			if ok && (v < time.Second || v > (1<<32-1)*time.Second) {
				d.errf(s.val, "%s: want 1s to 136y, got %s", what, v)
			}
			b.MaxSessionExpiry = v
		case "max_sessions":
			b.MaxSessions = intIn(s, 1, 1<<31-1)
		case "max_inflight":
			b.MaxInflight = intIn(s, 1, 65535)
		case "max_retained":
			b.MaxRetained = intIn(s, 1, 1<<31-1)
		case "max_subscriptions":
			b.MaxSubscriptions = intIn(s, 1, 1<<31-1)
		case "max_login_failures":
			b.MaxLoginFailures = intIn(s, 1, 1<<31-1)
		}
	}
	if b.Listen != "" && !IsLoopback(b.Listen) {
		if b.UsersFile == "" {
			d.errf(n, "broker: listening on %s (not loopback) requires users_file: an open broker on the network accepts anyone", b.Listen)
		}
		if !b.TLS.Enabled() && !b.AllowPlaintext {
			d.errf(n, "broker: listening on %s (not loopback) without tls: passwords and readings would cross the network in clear; configure tls: {cert, key}, or set allow_plaintext: true to accept that", b.Listen)
		}
	}
}

func (d *doc) tls(n yamlNode, what string, rel func(string) string) TLSConfig {
	var t TLSConfig
	sub, _ := d.fields(n, what, "ca", "cert", "key")
	for _, s := range sub {
		var v string
		if s.key == "key" {
			v = d.secretFile(s.val, what+": key", rel)
		} else {
			v = rel(d.fileRef(s.val, what+": "+s.key))
		}
		switch s.key {
		case "ca":
			t.CA = v
		case "cert":
			t.Cert = v
		case "key":
			t.Key = v
		}
	}
	if (t.Cert == "") != (t.Key == "") {
		d.errf(n, "%s: cert and key go together", what)
	}
	return t
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

// size parses a byte count: a whole number, optionally with a unit (KB,
// MB, GB as powers of 1,000; KiB, MiB, GiB as powers of 1,024).
func (d *doc) size(n ast.Node, what string) (int64, bool) {
	s, ok := d.scalar(n, what)
	if !ok {
		return 0, false
	}
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		sfx string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if v, ok := strings.CutSuffix(t, u.sfx); ok {
			t, mult = strings.TrimSpace(v), u.m
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		d.errf(n, "%s: bad size %q (a whole number of bytes, or with KB, MB, GB, KiB, MiB, GiB)", what, s)
		return 0, false
	}
	return v * mult, true
}
