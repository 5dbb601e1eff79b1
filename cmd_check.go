package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

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
	files, errs := rules.Expand(fs.Args())
	if len(files) == 0 && len(errs) == 0 {
		errs = append(errs, rules.Error{Pos: rules.Pos{File: strings.Join(fs.Args(), ","), Line: 1, Col: 1}, Msg: "no rule files (*.yaml, *.yml) found"})
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
		if rules.IsConfig(b) {
			configs++
			c, err := rules.ParseConfig(f, b)
			if err != nil {
				errs = append(errs, rules.AsErrors(err)...)
				continue
			}
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
		set, perrs := rules.ParseValid(ruleFiles, srcs)
		errs = append(errs, perrs...)
		err := engine.Check(set)
		nrules = len(set.Rules)
		if es := rules.AsErrors(err); es != nil {
			errs = append(errs, es...)
		} else if err != nil {
			return err
		}
		if len(errs) == 0 && nrules == 0 {
			errs = append(errs, rules.Error{Pos: rules.Pos{File: ruleFiles[0], Line: 1, Col: 1}, Msg: "no rules"})
		}
	}
	if len(errs) > 0 {
		rules.SortErrors(errs, append(append([]string(nil), files...), ruleFiles...))
		for _, e := range errs {
			fmt.Fprintln(sio.err, e.Error())
		}
		return &exitError{1, errQuiet}
	}
	fmt.Fprintf(sio.out, "ok: %d rules in %d rule files, %d config files\n", nrules, len(ruleFiles), configs)
	return nil
}
