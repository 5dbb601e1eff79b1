package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-gw/vigil/fleet"
	"github.com/vigil-gw/vigil/rules"
)

// cmdPush checks rule files as `vigil check` does, signs them as one bundle
// and publishes it retained to the fleet's rules topic; --clear publishes an
// empty retained message instead. Nothing is published on any error.
func cmdPush(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	mf := addMQTTFlags(fs)
	keyPath := fs.String("key", "", "the signing key, NAME.key (vigil keygen)")
	all := fs.Bool("all", false, "push to every gateway: {prefix}/all/rules")
	gateway := fs.String("gateway", "", "push to one gateway: {prefix}/{gateway}/rules (wins over --all)")
	version := fs.String("version", "", "the bundle's version, shown by every gateway")
	clear := fs.Bool("clear", false, "publish an empty retained message: remove the bundle")
	fs.Usage = func() {
		fmt.Fprintln(sio.err, "usage: vigil push --broker URL [--username U --password-file F --ca F] --key NAME.key (--all | --gateway G) [--prefix vigil] --version V PATH...\n       vigil push --broker URL [auth flags] (--all | --gateway G) [--prefix vigil] --clear")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errQuiet}
	}
	usage := func(msg string) error {
		fmt.Fprintln(sio.err, "vigil push: "+msg)
		fs.Usage()
		return &exitError{2, errQuiet}
	}
	switch {
	case mf.broker == "":
		return usage("--broker is required")
	case *all == (*gateway != ""):
		return usage("give one of --all and --gateway")
	case *gateway != "" && (*gateway == "all" || strings.ContainsAny(*gateway, "/+#")):
		return usage(fmt.Sprintf("--gateway %q: a gateway name, without / + #", *gateway))
	case !*clear && (*keyPath == "" || *version == "" || fs.NArg() == 0):
		return usage("--key, --version and at least one PATH are required")
	case *clear && fs.NArg() > 0:
		return usage("--clear takes no PATH")
	}
	if err := checkPrefix(mf.prefix); err != nil {
		return usage(err.Error())
	}
	topic := fleet.RulesTopic(mf.prefix, *gateway)
	var payload []byte
	what := "cleared"
	if !*clear {
		b, err := bundleOf(fs.Args(), *version, sio)
		if err != nil {
			return err
		}
		priv, err := fleet.ReadPrivateKey(*keyPath)
		if err != nil {
			return exitf(1, "push: key: %v", err)
		}
		if err := b.Sign(fleet.KeyName(*keyPath), priv); err != nil {
			return exitf(1, "push: %v", err)
		}
		payload = b.Marshal()
		if len(payload) > fleet.MaxPayload {
			return exitf(1, "push: bundle of %d bytes, at most %d", len(payload), fleet.MaxPayload)
		}
		what = fmt.Sprintf("pushed %s (%d files, sha256 %.12s, key %s)", b.Version, len(b.Files), b.SHA256(), b.Key)
	}
	c, err := mf.dial(ctx)
	if err != nil {
		return exitf(1, "push: %v", err)
	}
	defer c.Close()
	if err := c.Publish(topic, payload, 1, true); err != nil {
		return exitf(1, "push: %v", err)
	}
	fmt.Fprintf(sio.out, "%s to %s\n", what, topic)
	return nil
}

// bundleOf checks the rule files exactly as `vigil check` does (every
// problem printed, exit 1) and makes them a bundle named by their base
// names, issued now. Sign checks the bundle's form.
func bundleOf(paths []string, version string, sio stdio) (*fleet.Bundle, error) {
	c, err := checkPaths(paths)
	if err != nil {
		return nil, err
	}
	for _, f := range c.files {
		if c.srcs[f] == nil && c.configs > 0 {
			c.errs = append(c.errs, rules.Error{Pos: rules.Pos{File: f, Line: 1, Col: 1}, Msg: "a daemon config: push takes rule files"})
		}
	}
	b := &fleet.Bundle{Version: version, Issued: time.Now().UTC().Format(time.RFC3339Nano), Files: map[string]string{}}
	from := map[string]string{}
	for _, f := range c.ruleFiles {
		name := filepath.Base(f)
		if prev, dup := from[name]; dup {
			c.errs = append(c.errs, rules.Error{Pos: rules.Pos{File: f, Line: 1, Col: 1}, Msg: fmt.Sprintf("same file name as %s: a bundle names files by their base name", prev)})
			continue
		}
		from[name] = f
		b.Files[name] = string(c.srcs[f])
	}
	if c.report(sio) {
		return nil, &exitError{1, errQuiet}
	}
	return b, nil
}
