package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/conn"
	"github.com/vigil-gw/vigil/fleet"
	"github.com/vigil-gw/vigil/rules"
)

// mqttFlags are the connection flags of push and fleet.
type mqttFlags struct {
	broker, username, passwordFile, ca, prefix string
}

func addMQTTFlags(fs *flag.FlagSet) *mqttFlags {
	m := &mqttFlags{}
	fs.StringVar(&m.broker, "broker", "", "the fleet's MQTT broker, tcp://host:1883 or tls://host:8883")
	fs.StringVar(&m.username, "username", "", "MQTT username")
	fs.StringVar(&m.passwordFile, "password-file", "", "file holding the MQTT password")
	fs.StringVar(&m.ca, "ca", "", "CA certificate (PEM) to verify a TLS broker")
	fs.StringVar(&m.prefix, "prefix", "vigil", "the fleet's topic prefix (fleet.prefix)")
	return m
}

func (m *mqttFlags) dial(ctx context.Context) (*conn.Client, error) {
	o := conn.Options{Broker: m.broker, Username: m.username, Logger: newLogger(os.Stderr, "error")}
	if m.passwordFile != "" {
		b, err := os.ReadFile(m.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("password-file: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	if m.ca != "" || strings.HasPrefix(m.broker, "tls://") || strings.HasPrefix(m.broker, "ssl://") || strings.HasPrefix(m.broker, "mqtts://") {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if m.ca != "" {
			pem, err := os.ReadFile(m.ca)
			if err != nil {
				return nil, fmt.Errorf("ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca %s: no certificate found", m.ca)
			}
		}
		o.TLS = tc
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return conn.Dial(ctx, o)
}

func checkPrefix(p string) error {
	if p == "" || strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.HasPrefix(p, "$") {
		return fmt.Errorf("--prefix %q: want topic levels without + # and no leading or trailing /", p)
	}
	return nil
}

// checkFleetKeys reports public_keys that are not readable ed25519 keys
// (for `vigil check` of a config).
func checkFleetKeys(c *config.Config) rules.Errors {
	var errs rules.Errors
	for i, p := range c.Fleet.PublicKeys {
		if _, err := fleet.ReadPublicKey(p); err != nil {
			errs = append(errs, rules.Error{Pos: c.Fleet.KeyPos[i], Msg: fmt.Sprintf("fleet: public_keys: %v", err)})
		}
	}
	return errs
}

// fleetRow is what the retained topics say of one gateway.
type fleetRow struct {
	status *fleet.Status
	health *fleet.Health
	rules  *fleet.RulesStatus
}

// cmdFleet prints one line per gateway from the retained status, health
// and rules-status topics.
func cmdFleet(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	mf := addMQTTFlags(fs)
	wait := fs.Duration("wait", 3*time.Second, "longest wait for the retained messages (the listing ends sooner once they stop coming)")
	fs.Usage = func() {
		fmt.Fprintln(sio.err, "usage: vigil fleet --broker URL [--username U --password-file F --ca F] [--prefix vigil]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errQuiet}
	}
	if mf.broker == "" || fs.NArg() > 0 {
		fs.Usage()
		return &exitError{2, errQuiet}
	}
	if err := checkPrefix(mf.prefix); err != nil {
		return exitf(2, "%v", err)
	}
	c, err := mf.dial(ctx)
	if err != nil {
		return exitf(1, "fleet: %v", err)
	}
	defer c.Close()
	var mu sync.Mutex
	rows := map[string]*fleetRow{}
	last := time.Now()
	take := func(topic string, payload []byte) {
		gw, rest, ok := fleet.GatewayOf(mf.prefix, topic)
		if !ok || len(payload) == 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		last = time.Now()
		r := rows[gw]
		if r == nil {
			r = &fleetRow{}
		}
		var err error
		switch rest {
		case "status":
			r.status = &fleet.Status{}
			err = json.Unmarshal(payload, r.status)
		case "health":
			r.health = &fleet.Health{}
			err = json.Unmarshal(payload, r.health)
		case "rules/status":
			r.rules = &fleet.RulesStatus{}
			err = json.Unmarshal(payload, r.rules)
		}
		if err == nil {
			rows[gw] = r
		}
	}
	// QoS 0: a listing needs no acknowledgements, and mochi (v2.7.9)
	// refuses a SUBSCRIBE whose packet id equals one of the QoS 1
	// retained messages it is still sending (reason 0x91).
	for _, f := range []string{"/+/status", "/+/health", "/+/rules/status"} {
		if err := c.Subscribe(mf.prefix+f, 0, take); err != nil {
			return exitf(1, "fleet: %v", err)
		}
	}
	// Retained messages come right after the subscriptions; MQTT marks no
	// end of them, so the listing ends once they stop coming.
	mu.Lock()
	last = time.Now()
	mu.Unlock()
	deadline := time.Now().Add(*wait)
	for {
		mu.Lock()
		quiet := time.Since(last)
		mu.Unlock()
		if quiet > 500*time.Millisecond || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("interrupted")
		case <-time.After(100 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	printFleet(sio, rows, time.Now())
	return nil
}

func printFleet(sio stdio, rows map[string]*fleetRow, now time.Time) {
	names := make([]string, 0, len(rows))
	for n := range rows {
		names = append(names, n)
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(sio.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATEWAY\tSTATE\tSINCE\tVIGIL\tRULES\tRULES STATE\tMESSAGES\tALERTS\tDECODE ERR\tDROPPED\tOUTBOX\tRSS MB\tHEALTH AGE")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, n := range names {
		r := rows[n]
		state, since, version, rv := "-", "-", "-", "-"
		if s := r.status; s != nil {
			state, since, version = s.State, s.Since.UTC().Format(time.RFC3339), dash(s.Version)
			rv = dash(s.Rules.Version)
		}
		rs := "-"
		if r.rules != nil {
			// The latest applied bundle is what runs: a status the
			// broker published from the will dates from vigil's start.
			if r.rules.State == fleet.Applied {
				rv = dash(r.rules.Version)
			}
			rs = r.rules.State
			if r.rules.State == fleet.Rejected {
				rs += " " + dash(r.rules.Version)
			}
		}
		health := "-\t-\t-\t-\t-\t-"
		if h := r.health; h != nil {
			health = fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%.1f\t%s", h.Messages, h.Alerts, h.DecodeErrors, h.Dropped, h.OutboxDepth,
				float64(h.RSSBytes)/(1<<20), now.Sub(h.Time).Round(time.Second))
		} else {
			health += "\t-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, state, since, version, rv, rs, health)
	}
	tw.Flush()
}
