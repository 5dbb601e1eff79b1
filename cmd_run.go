package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/vigil-gw/vigil/config"
	"github.com/vigil-gw/vigil/gateway"
	"github.com/vigil-gw/vigil/rules"
)

// cmdRun is the daemon.
func cmdRun(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	cfgPath := fs.String("c", defaultConfigPath(), "config file")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errQuiet}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		printErrors(sio.err, err)
		return &exitError{1, errQuiet}
	}
	if len(cfg.Rules) == 0 && !cfg.Fleet.Enabled {
		return exitf(1, "%s: no `rules:` configured", *cfgPath)
	}
	log := newLogger(sio.err, cfg.Log.Level)
	if l := setMemoryLimit(); l > 0 {
		log.Info("soft memory limit (set GOMEMLIMIT to change)", "bytes", l)
	}
	return runGateway(ctx, cfg, log, nil, func(url string) { log.Info("web UI listening", "url", url) })
}

func defaultConfigPath() string {
	if _, err := os.Stat("/etc/vigil/vigil.yaml"); err == nil {
		return "/etc/vigil/vigil.yaml"
	}
	return "vigil.yaml"
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// runGateway runs a gateway with its rule watcher, SIGHUP reloads and the
// web UI until ctx ends. extra, if set, adjusts the gateway options (the
// demo prints alerts).
func runGateway(ctx context.Context, cfg *config.Config, log *slog.Logger, extra func(*gateway.Options), onListen func(url string)) error {
	// SIGHUP is caught from the start: its default action would end the
	// process while it recovers.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := makeStateDir(cfg.State.Path); err != nil {
		return err
	}
	o := gateway.Options{Config: cfg, Logger: log, Version: version}
	web, err := newWeb(cfg, log)
	if err != nil {
		return err
	}
	if web != nil {
		web.hook(&o)
	}
	if extra != nil {
		extra(&o)
	}
	g, err := gateway.New(o)
	if err != nil {
		if web != nil {
			web.srv.Close()
		}
		if es := rules.AsErrors(err); es != nil {
			for _, e := range es {
				log.Error(e.Error())
			}
			return &exitError{1, fmt.Errorf("invalid rules: %d problems", len(es))}
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading rules")
				_ = g.Reload(ctx)
			}
		}
	}()
	if web != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := web.run(ctx, g, onListen); err != nil {
				log.Error("http", "err", err)
			}
		}()
	}
	err = g.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// makeStateDir creates the directory of the state database when it does
// not exist, readable by vigil's user only (the journal holds every
// message received). An existing directory is left as it is.
func makeStateDir(dbPath string) error {
	dir := filepath.Dir(dbPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	return nil
}
