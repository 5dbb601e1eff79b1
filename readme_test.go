package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeTour: what README.md quotes is what the code does, so the two
// cannot drift. Every "$ command" of a sh block runs (vigil's commands
// in-process; `make demo` as `vigil demo`) and its output (stdout, then
// stderr) must match the lines quoted under it: a line "…" stands for any
// number of lines, "…" within a line for any text, and a loopback port for
// any port. Every rule quoted from the examples is in them word for word,
// and the tour's fault interval is the demo's.
func TestReadmeTour(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	examples, err := os.ReadFile("examples/demo-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	commands := 0
	for _, blk := range codeBlocks(readme) {
		switch {
		case blk.lang == "yaml" && strings.HasPrefix(blk.text, "rules:\n"):
			if body := strings.TrimPrefix(blk.text, "rules:\n"); !strings.Contains(string(examples), body) {
				t.Errorf("README quotes a rule that examples/demo-rules.yaml does not hold:\n%s", body)
			}
		case blk.lang == "sh":
			for _, c := range shCommands(blk.text) {
				if c.cmd == "" {
					continue
				}
				commands++
				t.Run(c.cmd, func(t *testing.T) {
					got, ok := runQuoted(t, c.cmd)
					if !ok {
						return
					}
					if !matchLines(c.want, strings.Split(strings.TrimRight(got, "\n"), "\n")) {
						t.Errorf("README quotes:\n%s\n\nthe command prints:\n%s", strings.Join(c.want, "\n"), got)
					}
				})
			}
		}
	}
	if commands < 3 {
		t.Fatalf("found %d quoted commands in README.md; the tour has at least 3", commands)
	}
	prose := regexp.MustCompile(`a fault injected about every (\S+) `).FindStringSubmatch(readme)
	banner := regexp.MustCompile(`a fault about every (\S+)\n`).FindStringSubmatch(readme)
	if prose == nil || banner == nil || prose[1] != banner[1] {
		t.Errorf("the tour's fault interval %q is not the demo's banner's %q", prose, banner)
	}
}

type codeBlock struct{ lang, text string }

// codeBlocks are the fenced blocks of a markdown text, dedented by their
// fence's indentation.
func codeBlocks(md string) []codeBlock {
	var out []codeBlock
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimLeft(lines[i], " ")
		if !strings.HasPrefix(l, "```") {
			continue
		}
		indent := len(lines[i]) - len(l)
		blk := codeBlock{lang: strings.TrimPrefix(l, "```")}
		var text []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			text = append(text, strings.TrimPrefix(lines[i], strings.Repeat(" ", indent)))
		}
		blk.text = strings.Join(text, "\n") + "\n"
		out = append(out, blk)
	}
	return out
}

type quoted struct {
	cmd  string
	want []string
}

// shCommands splits a sh block into its "$ " commands and the lines
// quoted under each. Lines before the first "$ " are not checked.
func shCommands(text string) []quoted {
	var out []quoted
	cur := quoted{}
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if cmd, ok := strings.CutPrefix(l, "$ "); ok {
			out = append(out, cur)
			cur = quoted{cmd: cmd}
			continue
		}
		cur.want = append(cur.want, l)
	}
	return append(out, cur)
}

// runQuoted runs a README command and returns what it prints.
func runQuoted(t *testing.T, cmd string) (string, bool) {
	args := strings.Fields(cmd)
	switch {
	case cmd == "make demo":
		if testing.Short() {
			t.Skip("runs the demo")
		}
		return demoBanner(t), true
	case len(args) > 2 && args[0] == "go" && args[1] == "run" && args[2] == ".":
		args = args[3:]
	case len(args) > 0 && args[0] == "vigil":
		args = args[1:]
	default:
		t.Errorf("README quotes %q, which this test does not know how to run: add it here", cmd)
		return "", false
	}
	out, errs, _ := runCmd(t, "", args...)
	return out + errs, true
}

// demoBanner runs the demo until it is ready and returns what it printed.
func demoBanner(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb syncBuf
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "-http", "127.0.0.1:0", "-state", t.TempDir()}, stdio{strings.NewReader(""), &out, &errb})
	}()
	for !strings.Contains(out.String(), "Ctrl-C stops.") {
		select {
		case err := <-done:
			t.Fatalf("demo ended before it was ready: %v\n%s%s", err, out.String(), errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}
	// Only what it printed up to being ready: alerts may follow.
	s := out.String()
	return s[:strings.Index(s, "Ctrl-C stops.")+len("Ctrl-C stops.")]
}

var loopbackPort = regexp.MustCompile(`127\\\.0\\\.0\\\.1:\d+`)

// matchLines matches got against want, where a want line "…" is any number
// of lines and "…" within a line is any text.
func matchLines(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if strings.TrimSpace(want[0]) == "…" {
		for i := 0; i <= len(got); i++ {
			if matchLines(want[1:], got[i:]) {
				return true
			}
		}
		return false
	}
	if len(got) == 0 {
		return false
	}
	pat := regexp.QuoteMeta(want[0])
	pat = strings.ReplaceAll(pat, "…", ".*")
	pat = loopbackPort.ReplaceAllString(pat, `127\.0\.0\.1:\d+`)
	if !regexp.MustCompile("^" + pat + "$").MatchString(got[0]) {
		return false
	}
	return matchLines(want[1:], got[1:])
}
