package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/engine"
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/replay"
	"github.com/vigil-gw/vigil/rules"
)

// maxLine is the longest recorded-message line replay reads; a longer one
// is counted as bad and skipped.
const maxLine = 4 << 20

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// cmdReplay runs rules over recorded messages in event time, with no broker
// and no wall clock, and prints one JSON alert per line.
func cmdReplay(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	var rulePaths multiFlag
	fs.Var(&rulePaths, "rules", "rule file or directory (repeatable)")
	cfgPath := fs.String("c", "", "daemon config (gateway name, limits, upstream topic)")
	quiet := fs.Bool("q", false, "no summary on stderr")
	fs.Usage = func() {
		fmt.Fprintln(sio.err, "usage: vigil replay --rules PATH [-c vigil.yaml] [FILE|-]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errQuiet}
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return &exitError{2, errQuiet}
	}
	opts := config.Default().EngineOptions()
	opts.Gateway = "replay"
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath)
		if err != nil {
			printErrors(sio.err, err)
			return &exitError{1, errQuiet}
		}
		opts = c.EngineOptions()
		if len(rulePaths) == 0 {
			rulePaths = c.Rules
		}
	}
	if len(rulePaths) == 0 {
		fs.Usage()
		return exitf(1, "replay: --rules is required")
	}
	set, err := rules.Load(rulePaths...)
	if err != nil {
		printErrors(sio.err, err)
		return &exitError{1, errQuiet}
	}
	eng, err := engine.New(set, opts)
	if err != nil {
		printErrors(sio.err, err)
		return &exitError{1, errQuiet}
	}
	in := sio.in
	name := "stdin"
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return exitf(2, "replay: %v", err)
		}
		defer f.Close()
		in, name = f, fs.Arg(0)
	}
	out := bufio.NewWriter(sio.out)
	defer out.Flush()
	sum, err := replayAll(ctx, eng, in, out)
	if ferr := out.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	if !*quiet {
		sum.print(sio.err, name, eng)
	}
	if err != nil {
		return exitf(2, "replay: read %s: %v", name, err)
	}
	return nil
}

func printErrors(w io.Writer, err error) {
	if es := rules.AsErrors(err); es != nil {
		for _, e := range es {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}

type badLine struct {
	line int
	msg  string
}

type summary struct {
	lines  int
	bad    []badLine
	badN   int
	alerts int
}

const maxBadListed = 20

func (s *summary) badf(line int, format string, args ...any) {
	s.badN++
	if len(s.bad) < maxBadListed {
		s.bad = append(s.bad, badLine{line, fmt.Sprintf(format, args...)})
	}
}

// replayAll runs every line of in through eng, writing the alerts to out.
func replayAll(ctx context.Context, eng *engine.Engine, in io.Reader, out io.Writer) (*summary, error) {
	s := &summary{}
	var line []byte
	write := func(alerts []event.Alert) error {
		for i := range alerts {
			s.alerts++
			// As a json.Encoder with SetEscapeHTML(false) writes it.
			var err error
			if line, err = alerts[i].AppendJSON(line[:0], false); err != nil {
				return err
			}
			if _, err := out.Write(append(line, '\n')); err != nil {
				return err
			}
		}
		return nil
	}
	r := bufio.NewReaderSize(in, 64<<10)
	var buf []byte // a long line, reused: nothing keeps a message's bytes past Process
	var records replay.Parser
	for {
		if ctx.Err() != nil {
			return s, ctx.Err()
		}
		line, tooLong, err := readLine(r, &buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return s, err
		}
		s.lines++
		if tooLong {
			s.badf(s.lines, "line longer than %d bytes", maxLine)
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, err := records.Parse(line)
		if err != nil {
			s.badf(s.lines, "%v", err)
			continue
		}
		alerts, err := eng.Process(engine.Message{Topic: rec.Topic, Payload: rec.Payload, Received: rec.Received, Seq: uint64(s.lines)})
		if err != nil {
			var de *engine.DecodeError
			if !errors.As(err, &de) {
				return s, err
			}
			s.badf(s.lines, "%v", err)
		}
		if err := write(alerts); err != nil {
			return s, err
		}
	}
	return s, write(eng.Flush())
}

// readLine reads one line of any length, keeping at most maxLine bytes:
// a line that fits r's buffer as it stands there (valid until the next
// read), a longer one copied into *buf.
func readLine(r *bufio.Reader, buf *[]byte) (_ []byte, tooLong bool, err error) {
	chunk, isPrefix, err := r.ReadLine()
	if err == nil && !isPrefix {
		return chunk, false, nil // the usual line
	}
	line := (*buf)[:0]
	defer func() { *buf = line }()
	for ; ; chunk, isPrefix, err = r.ReadLine() {
		if err != nil {
			if err == io.EOF && (len(line) > 0 || tooLong) {
				return line, tooLong, nil
			}
			return line, false, err
		}
		if !tooLong {
			if len(line)+len(chunk) > maxLine {
				tooLong, line = true, line[:0]
			} else {
				line = append(line, chunk...)
			}
		}
		if !isPrefix {
			return line, tooLong, nil
		}
	}
}

func (s *summary) print(w io.Writer, name string, eng *engine.Engine) {
	st := eng.Stats()
	fmt.Fprintf(w, "replay %s: %d lines, %d messages, %d events, %d alerts, %d bad lines",
		name, s.lines, st.Messages, st.Events, s.alerts, s.badN)
	if st.Duplicates > 0 {
		fmt.Fprintf(w, ", %d duplicates dropped", st.Duplicates)
	}
	if st.Future > 0 {
		fmt.Fprintf(w, ", %d events dropped for a time more than limits.max_future ahead of their receipt", st.Future)
	}
	if st.Suppressed > 0 {
		fmt.Fprintf(w, ", %d alerts held back by cooldown", st.Suppressed)
	}
	fmt.Fprintln(w)
	for _, rs := range eng.RuleStats() {
		fmt.Fprintf(w, "  rule %-24s %6d events %6d alerts", rs.Name, rs.Events, rs.Alerts)
		if rs.Late > 0 {
			fmt.Fprintf(w, " %6d late", rs.Late)
		}
		if rs.Errors > 0 {
			fmt.Fprintf(w, " %6d errors (last: %s)", rs.Errors, rs.LastError)
		}
		if rs.Evicted > 0 {
			fmt.Fprintf(w, " %6d keys evicted", rs.Evicted)
		}
		if rs.Disabled != "" {
			fmt.Fprintf(w, " DISABLED (over its expression budget: %s)", rs.Disabled)
		}
		fmt.Fprintln(w)
	}
	for _, b := range s.bad {
		fmt.Fprintf(w, "  %s:%d: %s\n", name, b.line, b.msg)
	}
	if s.badN > len(s.bad) {
		fmt.Fprintf(w, "  … and %d more bad lines\n", s.badN-len(s.bad))
	}
}
