package fleet

import (
	"strings"
	"time"
)

// Topics under a prefix, for one gateway.
type Topics struct{ Prefix, Gateway string }

func (t Topics) Status() string      { return t.Prefix + "/" + t.Gateway + "/status" }
func (t Topics) Health() string      { return t.Prefix + "/" + t.Gateway + "/health" }
func (t Topics) Rules() string       { return t.Prefix + "/" + t.Gateway + "/rules" }
func (t Topics) RulesStatus() string { return t.Prefix + "/" + t.Gateway + "/rules/status" }
func (t Topics) AllRules() string    { return t.Prefix + "/all/rules" }

// RulesTopic is where `vigil push` publishes: {prefix}/all/rules, or
// {prefix}/{gateway}/rules for one gateway.
func RulesTopic(prefix, gateway string) string {
	if gateway == "" {
		gateway = "all"
	}
	return Topics{prefix, gateway}.Rules()
}

// GatewayOf splits {prefix}/{gateway}/{rest} and returns gateway and rest.
func GatewayOf(prefix, topic string) (gateway, rest string, ok bool) {
	s, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return "", "", false
	}
	gateway, rest, ok = strings.Cut(s, "/")
	return gateway, rest, ok && gateway != ""
}

// Status states.
const (
	Online  = "online"
	Offline = "offline"
)

// Rules states.
const (
	Applied  = "applied"
	Rejected = "rejected"
	None     = "none" // no pushed bundle: local rule files only
)

// Status is {prefix}/{gateway}/status, retained.
type Status struct {
	Gateway string    `json:"gateway"`
	State   string    `json:"state"` // online | offline
	Since   time.Time `json:"since"`
	Version string    `json:"version"` // vigil's
	Rules   RulesInfo `json:"rules"`
}

// RulesInfo is the pushed bundle a gateway runs: its version and SHA-256
// (empty with none), and the outcome of the latest bundle it received
// (applied, rejected) or none.
type RulesInfo struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	State   string `json:"state"`
}

// RulesStatus is {prefix}/{gateway}/rules/status, retained: the outcome of
// the latest bundle received.
type RulesStatus struct {
	Version string    `json:"version"`
	State   string    `json:"state"` // applied | rejected
	Errors  []string  `json:"errors"`
	Time    time.Time `json:"time"`
}

// Health is {prefix}/{gateway}/health, retained: the counters of
// /api/status, under the same names.
type Health struct {
	Gateway           string    `json:"gateway"`
	Time              time.Time `json:"time"`
	UptimeSeconds     float64   `json:"uptime_seconds"`
	Messages          uint64    `json:"messages_total"`
	Events            uint64    `json:"events_total"`
	Alerts            uint64    `json:"alerts_total"`
	DecodeErrors      uint64    `json:"decode_errors_total"`
	Late              uint64    `json:"late_total"`
	Dropped           uint64    `json:"dropped_total"`
	OutboxDepth       int       `json:"outbox_depth"`
	JournalLength     int       `json:"journal_length"`
	ProcessLagSeconds float64   `json:"process_lag_seconds"`
	RSSBytes          uint64    `json:"rss_bytes"`
	CPUSeconds        float64   `json:"cpu_seconds_total"`
}
