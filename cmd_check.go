package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/vigil-gw/vigil/broker"
	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/engine"
	"github.com/vigil-gw/vigil/rules"
)

// cmdCheck validates config and rule files. Files are classified by
// content: a daemon config's `rules:` is a path, a rule file's is a list. A
// config's rule paths are checked too.
func cmdCheck(args []string, sio stdio) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	fs.Usage = func() { fmt.Fprintln(sio.err, "usage: vigil check PATH...") }
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errQuiet}
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return &exitError{2, errQuiet}
	}
	c, err := checkPaths(fs.Args())
	if err != nil {
		return err
	}
	if c.report(sio) {
		return &exitError{1, errQuiet}
	}
	fmt.Fprintf(sio.out, "ok: %d rules in %d rule files, %d config files\n", c.rules, len(c.ruleFiles), c.configs)
	return nil
}

// checked is what checkPaths found.
type checked struct {
	files     []string // the paths named, expanded
	ruleFiles []string // rule files, those of configs included
	srcs      map[string][]byte
	rules     int
	configs   int
	errs      rules.Errors
}

// checkPaths is `vigil check` without its output: `vigil push` checks
// its files with it too.
func checkPaths(paths []string) (*checked, error) {
	files, errs := rules.Expand(paths)
	if len(files) == 0 && len(errs) == 0 {
		errs = append(errs, rules.Error{Pos: rules.Pos{File: strings.Join(paths, ","), Line: 1, Col: 1}, Msg: "no rule files (*.yaml, *.yml) found"})
	}
	var ruleFiles []string
	srcs := map[string][]byte{}
	configs := 0
	seen := map[string]bool{}
	addRules := func(paths []string) {
		more, es := rules.Expand(paths)
		errs = append(errs, es...)
		for _, f := range more {
			if !seen[f] {
				seen[f] = true
				ruleFiles = append(ruleFiles, f)
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, rules.Error{Pos: rules.Pos{File: f, Line: 1, Col: 1}, Msg: fmt.Sprintf("read: %v", err)})
			continue
		}
		if config.IsConfig(b) {
			configs++
			c, err := config.Parse(f, b)
			if err != nil {
				errs = append(errs, rules.AsErrors(err)...)
				continue
			}
			errs = append(errs, checkUsersFile(c)...)
			errs = append(errs, checkFleetKeys(c)...)
			addRules(c.Rules)
			continue
		}
		if !seen[f] {
			seen[f] = true
			ruleFiles = append(ruleFiles, f)
			srcs[f] = b
		}
	}
	nrules := 0
	if len(ruleFiles) > 0 {
		for _, f := range ruleFiles {
			if _, ok := srcs[f]; !ok {
				b, err := os.ReadFile(f)
				if err != nil {
					errs = append(errs, rules.Error{Pos: rules.Pos{File: f, Line: 1, Col: 1}, Msg: fmt.Sprintf("read: %v", err)})
					continue
				}
				srcs[f] = b
			}
		}
		// Rules with errors are left out; the valid ones are checked
		// further (detector parameters), so every problem shows at once.
		set, cerrs, err := engine.CheckFiles(ruleFiles, srcs)
		if err != nil {
			return nil, err
		}
		errs = append(errs, cerrs...)
		nrules = len(set.Rules)
		if len(errs) == 0 && nrules == 0 {
			errs = append(errs, rules.Error{Pos: rules.Pos{File: ruleFiles[0], Line: 1, Col: 1}, Msg: "no rules"})
		}
	}
	return &checked{files: files, ruleFiles: ruleFiles, srcs: srcs, rules: nrules, configs: configs, errs: errs}, nil
}

// report prints every problem as FILE:LINE:COL: message on stderr; it
// reports whether there was any.
func (c *checked) report(sio stdio) bool {
	if len(c.errs) == 0 {
		return false
	}
	rules.SortErrors(c.errs, append(append([]string(nil), c.files...), c.ruleFiles...))
	for _, e := range c.errs {
		fmt.Fprintln(sio.err, e.Error())
	}
	return true
}

// checkUsersFile reads the embedded broker's users file, as `vigil run`
// will, and returns its problems as FILE:LINE:COL errors.
func checkUsersFile(c *config.Config) []rules.Error {
	if c.Broker.UsersFile == "" {
		return nil
	}
	_, err := broker.LoadUsers(c.Broker.UsersFile)
	var ue broker.UsersErrors
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue):
		out := make([]rules.Error, len(ue))
		for i, e := range ue {
			out[i] = rules.Error{Pos: rules.Pos{File: e.File, Line: e.Line, Col: 1}, Msg: e.Msg}
		}
		return out
	default:
		return []rules.Error{{Pos: rules.Pos{File: c.Broker.UsersFile, Line: 1, Col: 1}, Msg: err.Error()}}
	}
}
