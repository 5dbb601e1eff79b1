package ui

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/vigil-gw/vigil/event"
)

// Dead letters: alerts upstream refused again and again, set aside by the
// forwarder so the alerts behind them flow (docs/api.md). The operator
// lists them and sends them again.

// DeadLetter is one set-aside alert.
type DeadLetter struct {
	Alert    event.Alert
	Reason   string    // the last publish error
	Attempts int       // rounds in which upstream refused it
	At       time.Time // when it was set aside
}

type deadLetterJSON struct {
	alertJSON
	Reason   string    `json:"reason"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"set_aside_at"`
	Topic    string    `json:"topic"`
}

func (s *Server) handleDeadLetters(w http.ResponseWriter, r *http.Request) {
	dls, err := s.o.Source.DeadLetters()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "read dead letters: "+err.Error())
		return
	}
	out := struct {
		DeadLetters []deadLetterJSON `json:"dead_letters"`
	}{DeadLetters: make([]deadLetterJSON, 0, len(dls))}
	for _, d := range dls {
		out.DeadLetters = append(out.DeadLetters, deadLetterJSON{alertJSON: alertView(d.Alert),
			Reason: d.Reason, Attempts: d.Attempts, At: d.At.UTC(), Topic: d.Alert.Topic})
	}
	writeJSON(w, http.StatusOK, out)
}

// maxRetryBody bounds POST /api/dead-letters/retry's body: a thousand ids.
const maxRetryBody = 64 << 10

// handleRetryDeadLetters puts set-aside alerts back at the end of the
// outbox: {"ids": [...]} names them, an empty body or no ids means all.
func (s *Server) handleRetryDeadLetters(w http.ResponseWriter, r *http.Request) {
	var req struct {
		IDs []string `json:"ids"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRetryBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "want {\"ids\": [\"…\"]}: "+err.Error())
			return
		}
	}
	n, err := s.o.Source.RetryDeadLetters(req.IDs)
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, ErrBadRequest) {
			code = http.StatusBadRequest
		}
		writeError(w, code, "retry dead letters: "+err.Error())
		return
	}
	s.o.Logger.Info("ui: dead letters sent again", "alerts", n)
	writeJSON(w, http.StatusOK, map[string]int{"retried": n})
}

// ErrBadRequest marks a Source error the caller caused (HTTP 400).
var ErrBadRequest = errors.New("bad request")
