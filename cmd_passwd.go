package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/vigil-gw/vigil/broker"
)

// cmdPasswd writes one user's entry in the embedded broker's users file:
// the password's bcrypt hash, the role and a device's topic prefix. The
// password comes from the terminal (asked twice, not echoed) or from the
// first line of standard input. Other lines are kept as they are; the
// file is replaced atomically with mode 0600 and its owner kept.
func cmdPasswd(args []string, sio stdio) error {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	role := fs.String("role", "device", "admin (any topic, # included) or device (only under -prefix)")
	prefix := fs.String("prefix", "", "a device's topic prefix: it publishes to PREFIX and PREFIX/..., and subscribes only there")
	fs.Usage = func() {
		fmt.Fprintln(sio.err, "usage: vigil passwd FILE USER [-role device|admin] [-prefix TOPIC]   (password on stdin or asked)")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return &exitError{2, errQuiet}
	}
	if len(pos) != 2 {
		fs.Usage()
		return &exitError{2, errQuiet}
	}
	path, name := pos[0], pos[1]
	u := broker.User{Name: name, Role: broker.Role(*role)}
	if msg := broker.CheckUserName(name); msg != "" {
		return exitf(2, "passwd: %s", msg)
	}
	switch u.Role {
	case broker.RoleAdmin:
		if *prefix != "" {
			return exitf(2, "passwd: an admin has no -prefix")
		}
	case broker.RoleDevice:
		p, msg := broker.CleanPrefix(*prefix)
		if msg != "" {
			return exitf(2, "passwd: -prefix: %s (a device needs the topic it publishes under, e.g. -prefix sensors/%s)", msg, name)
		}
		u.Prefix = p
	default:
		return exitf(2, "passwd: -role %q: want admin or device", *role)
	}
	pw, err := readPassword(sio)
	if err != nil {
		return exitf(1, "passwd: %v", err)
	}
	if u.Hash, err = broker.HashPassword(pw); err != nil {
		return exitf(1, "passwd: %v", err)
	}
	replaced, err := writeUser(path, u)
	if err != nil {
		return exitf(1, "passwd: %v", err)
	}
	verb := "added"
	if replaced {
		verb = "replaced"
	}
	fmt.Fprintf(sio.err, "%s: %s user %q (%s)\n", path, verb, name, u.Role)
	return nil
}

// parseInterspersed parses flags wherever they stand among the arguments
// (the flag package stops at the first non-flag).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// readPassword asks twice on a terminal, or reads stdin's first line.
func readPassword(sio stdio) ([]byte, error) {
	if f, ok := sio.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(sio.err, "password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(sio.err)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(sio.err, "again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(sio.err)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(a, b) {
			return nil, errors.New("the passwords differ")
		}
		return a, nil
	}
	line, err := bufio.NewReader(io.LimitReader(sio.in, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return nil, errors.New("empty password (give it on stdin's first line)")
	}
	return []byte(pw), nil
}

// writeUser puts u's line in the users file at path, in place of the
// user's old line (whatever its format) or at the end.
func writeUser(path string, u broker.User) (bool, error) {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	var out bytes.Buffer
	if len(old) == 0 {
		out.WriteString("# vigil broker users: NAME:BCRYPT-HASH:admin or NAME:BCRYPT-HASH:device:TOPIC-PREFIX\n# Written by `vigil passwd FILE USER`. Keep it mode 0600.\n")
	}
	line := broker.FormatUser(u)
	replaced := false
	for _, l := range strings.SplitAfter(string(old), "\n") {
		if l == "" {
			continue
		}
		if n, ok := broker.UserNameOf(l); ok && n == u.Name {
			if !replaced {
				out.WriteString(line + "\n")
			}
			replaced = true
			continue
		}
		out.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			out.WriteByte('\n')
		}
	}
	if !replaced {
		out.WriteString(line + "\n")
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes it 0600; the owner of the file it replaces is kept
	// (root editing vigil's file must not take it away from vigil).
	if st, err := os.Stat(path); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			_ = tmp.Chown(int(sys.Uid), int(sys.Gid))
		}
	}
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, err
	}
	return replaced, nil
}
