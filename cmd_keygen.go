package main

import (
	"flag"
	"fmt"

	"github.com/vigil-gw/vigil/fleet"
)

// cmdKeygen writes an ed25519 key pair for signing rule bundles.
func cmdKeygen(args []string, sio stdio) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	fs.Usage = func() { fmt.Fprintln(sio.err, "usage: vigil keygen NAME   (writes NAME.key, mode 0600, and NAME.pub)") }
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errQuiet}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{2, errQuiet}
	}
	pub, key, err := fleet.GenerateKey(fs.Arg(0))
	if err != nil {
		return exitf(1, "keygen: %v", err)
	}
	fmt.Fprintf(sio.out, "wrote %s (keep it secret: it signs rule bundles) and %s (list it in fleet.public_keys of every gateway)\n", key, pub)
	return nil
}
