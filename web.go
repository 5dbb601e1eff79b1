package main

import (
	"context"
	"log/slog"

	"github.com/vigil-gw/vigil/gateway"
	"github.com/vigil-gw/vigil/rules"
)

// web serves the UI and HTTP API next to a gateway.
type web struct{}

func newWeb(cfg *rules.Config, log *slog.Logger) (*web, error) { return nil, nil }

func (w *web) hook(o *gateway.Options) {}
func (w *web) run(ctx context.Context, g *gateway.Gateway, onListen func(string)) error {
	return nil
}
