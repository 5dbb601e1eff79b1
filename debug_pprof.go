//go:build vigilpprof

package main

// Built only with `-tags vigilpprof`: serves net/http/pprof on the address
// in VIGIL_PPROF (for example 127.0.0.1:6060), for measuring memory and CPU
// of a running gateway (BENCHMARKS.md). Release builds do not contain it.

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("VIGIL_PPROF")
	if addr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof", "err", err)
		}
	}()
}
