// Package config reads the daemon's config, vigil.yaml (the spec is the
// config section of the contract; every key is listed in
// examples/vigil.yaml). Its sections decode straight into the option
// structs of the components they configure where those have yaml tags
// (broker.Options and its Limits, conn.Options, conn.IngestLimits,
// conn.ForwarderOptions, store.Options); what no component owns (the
// gateway's checkpointing, the file names of secrets and TLS) lives here.
//
// A setting a component gives a default to is left zero here, so the
// component's default is the only one; Default states the others.
//
// Errors carry the file, line and column of the value at fault and speak
// vigil.yaml's terms (rules.Errors, as `vigil check` prints them). It must
// not import gateway or main.
package config

import (
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/engine"
	"github.com/vigil-gw/vigil/rules"
	"github.com/vigil-gw/vigil/store"
)

// Config is vigil.yaml.
type Config struct {
	File     string   `yaml:"-"`
	Gateway  string   `yaml:"gateway"`
	MQTT     MQTT     `yaml:"mqtt"`
	Broker   Broker   `yaml:"broker"`
	Upstream Upstream `yaml:"upstream"`
	State    State    `yaml:"state"`
	Rules    []string `yaml:"rules"` // files or directories, relative to the config file
	HTTP     HTTP     `yaml:"http"`
	Limits   Limits   `yaml:"limits"`
	Log      Log      `yaml:"log"`
	Fleet    Fleet    `yaml:"fleet"`
}

// TLS names PEM files; relative paths are relative to the config file.
type TLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Enabled reports whether any TLS file is configured.
func (t TLS) Enabled() bool { return t.CA != "" || t.Cert != "" || t.Key != "" }

// MQTT is `mqtt:`, the broker vigil reads the devices' messages from.
type MQTT struct {
	// broker, client_id, username. The broker defaults to the embedded
	// one when that is configured, the client id to vigil-<gateway>.
	conn.Options `yaml:",inline"`
	PasswordFile string `yaml:"password_file"`
	TLS          TLS    `yaml:"tls"`
	Queue        int    `yaml:"queue"` // bounded ingest queue
	// InProcess is derived, not read: broker omitted with an embedded
	// broker configured. vigil then takes the embedded broker's messages
	// in-process instead of subscribing to it over loopback.
	InProcess bool `yaml:"-"`
}

// Broker is `broker:`, the optional embedded MQTT broker: listen,
// allow_plaintext and the limits are broker.Options'. An empty Listen
// means no embedded broker.
type Broker struct {
	broker.Options `yaml:",inline"`
	UsersFile      string `yaml:"users_file"` // NAME:BCRYPT:ROLE[:PREFIX] lines (vigil passwd); required beyond loopback
	TLS            TLS    `yaml:"tls"`
}

// Upstream is `upstream:`, where alerts go. An empty Broker keeps them in
// the outbox and history.
type Upstream struct {
	conn.Options `yaml:",inline"` // broker, client_id, username (default vigil-<gateway>-up)
	// dead_after: how many rounds upstream may refuse one alert before it
	// is set aside.
	conn.ForwarderOptions `yaml:",inline"`
	PasswordFile          string `yaml:"password_file"`
	TLS                   TLS    `yaml:"tls"`
	Topic                 string `yaml:"topic"` // a template over {gateway} {rule} {key} {severity}
	QoS                   int    `yaml:"qos"`   // 0 or 1
	// MaxAlertBytes caps an alert's JSON form (store.Options.MaxAlertBytes):
	// a larger one is stored trimmed.
	MaxAlertBytes int `yaml:"max_alert_bytes"`
}

// State is `state:`: the database (path, outbox_max, history, journal_max
// are store.Options') and how the gateway journals and checkpoints.
type State struct {
	store.Options   `yaml:",inline"`
	CheckpointEvery time.Duration `yaml:"checkpoint_every"`
	// CheckpointMessages: a checkpoint is taken (every CheckpointEvery)
	// once this many messages have been journaled since the last one, or
	// 5 minutes after it (1: every CheckpointEvery).
	CheckpointMessages int  `yaml:"checkpoint_messages"`
	Journal            bool `yaml:"journal"`
	// CommitGap is the shortest time between journal commits (at most
	// 1s): messages arriving sooner after a commit wait for the others of
	// that gap, so the disk sees at most 1/CommitGap syncs a second
	// whatever the rate. 0: a commit as soon as the last one ends.
	CommitGap time.Duration `yaml:"commit_gap"`
}

// HTTP is `http:`, the web UI and API.
type HTTP struct {
	Listen    string `yaml:"listen"` // "off" disables
	TokenFile string `yaml:"token_file"`
}

// Limits is `limits:`. max_topic_length and max_payload are
// conn.IngestLimits', enforced before a message is queued or journaled;
// the others go to the engine (EngineOptions).
type Limits struct {
	conn.IngestLimits `yaml:",inline"`
	MaxKeys           int           `yaml:"max_keys"`   // per rule
	Grace             time.Duration `yaml:"grace"`      // wall-clock grace before windows close on the gateway clock
	MaxFuture         time.Duration `yaml:"max_future"` // drop events stamped further ahead of their receipt
}

// Fleet is the `fleet:` block: pushed rule bundles, status and health over
// the upstream connection (docs/fleet.md).
type Fleet struct {
	Enabled     bool          `yaml:"-"` // the block is present
	Prefix      string        `yaml:"prefix"`
	RulesDir    string        `yaml:"rules_dir"`   // the last good bundle; default fleet-rules beside state.path
	PublicKeys  []string      `yaml:"public_keys"` // PEM public keys; none: every bundle is refused
	KeyPos      []rules.Pos   `yaml:"-"`           // where each of PublicKeys is written, for vigil check
	HealthEvery time.Duration `yaml:"health_every"`
}

// Log is `log:`.
type Log struct {
	Level string `yaml:"level"` // debug, info, warn, error
}

// DefaultCommitGap is state.commit_gap's default: at most 20 journal commits
// (and fsyncs) a second, for at most 50 ms more before a QoS 1 message is
// acknowledged (docs/operations.md, "SD card").
const DefaultCommitGap = 50 * time.Millisecond

// defaults are the settings no component gives a default to; Parse decodes
// the file over them. Left zero here, and filled by their component: the
// broker's limits, state.outbox_max, history and journal_max (store),
// limits.max_keys and grace (engine), upstream.dead_after (conn),
// fleet.health_every (fleet).
func defaults() *Config {
	c := &Config{}
	c.MQTT.Queue = 10000
	c.Upstream.Topic = "vigil/{gateway}/alerts/{rule}"
	c.Upstream.QoS = 1
	c.State.Path = "vigil.db"
	c.State.CheckpointEvery = 10 * time.Second
	c.State.CheckpointMessages = 10000
	c.State.Journal = true
	c.State.CommitGap = DefaultCommitGap
	c.HTTP.Listen = "127.0.0.1:8080"
	c.Limits.MaxTopic = 256
	c.Limits.MaxPayload = 64 << 10
	c.Limits.MaxFuture = time.Hour
	c.Log.Level = "info"
	c.Fleet.Prefix = "vigil"
	return c
}

// Default is the config of an empty file.
func Default() *Config {
	c := defaults()
	c.derive()
	return c
}

// derive fills the settings whose default depends on others.
func (c *Config) derive() {
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
	if c.Upstream.ClientID == "" {
		c.Upstream.ClientID = c.MQTT.ClientID + "-up"
	}
	if c.Fleet.Enabled && c.Fleet.RulesDir == "" {
		c.Fleet.RulesDir = filepath.Join(filepath.Dir(c.State.Path), "fleet-rules")
	}
}

// EngineOptions are the engine's options this config sets.
func (c *Config) EngineOptions() engine.Options {
	return engine.Options{Gateway: c.Gateway, DefaultTopic: c.Upstream.Topic,
		MaxKeys: c.Limits.MaxKeys, Grace: c.Limits.Grace, MaxFuture: c.Limits.MaxFuture}
}

// Load reads and checks vigil.yaml; every problem is reported.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, rules.Errors{{Pos: rules.Pos{File: path, Line: 1, Col: 1}, Msg: "read: " + err.Error()}}
	}
	return Parse(path, src)
}

// Parse checks a config given as contents; path names it in errors and is
// where relative paths start. The error, if any, is a rules.Errors.
func Parse(path string, src []byte) (*Config, error) {
	c := defaults()
	c.File = path
	d := newDecoder(path)
	root := d.Parse(src)
	d.section(root, "", valueOf(c))
	if d.keys["fleet"] != nil {
		c.Fleet.Enabled = true
	}
	d.check(c)
	if len(d.errs) > 0 {
		return nil, d.sorted()
	}
	c.derive()
	return c, nil
}
