package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// handleEvents is the live feed (Server-Sent Events):
//
//	event: status   every 2 s, the body of GET /api/status
//	event: alert    each new alert, with id: its live sequence number
//	event: reading  a device's latest values, at most once a second per device
//	event: resync   the client fell behind the alert ring: refetch /api/alerts
//
// A client that reconnects with Last-Event-ID gets the alerts it missed, as
// long as they are still in the ring. The handler owns its goroutine's
// loop: it returns when the client goes away or the server shuts down.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	var lastAlert uint64
	if id, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		lastAlert = id
	} else {
		_, lastAlert, _, _ = s.live.alertsAfter(^uint64(0)) // only alerts from now on
	}
	var readingsVer uint64
	var buf bytes.Buffer

	// The first frame: a retry hint, the status and every device, so the
	// page is complete without waiting for a tick.
	buf.WriteString("retry: 3000\n\n")
	s.writeStatus(&buf)
	readingsVer = s.writeReadings(&buf, readingsVer)

	statusT := time.NewTicker(statusTick)
	defer statusT.Stop()
	readT := time.NewTicker(readingTick)
	defer readT.Stop()
	for {
		alerts, newest, lost, wake := s.live.alertsAfter(lastAlert)
		if lost {
			buf.WriteString("event: resync\ndata: {}\n\n")
		}
		for _, a := range alerts {
			writeEvent(&buf, "alert", strconv.FormatUint(a.seq, 10), alertView(a.alert))
		}
		lastAlert = newest
		if buf.Len() > 0 {
			// A client that takes no data for this long is gone or
			// stuck: drop it rather than hold a goroutine forever.
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			buf.Reset()
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-statusT.C:
			s.writeStatus(&buf)
		case <-readT.C:
			readingsVer = s.writeReadings(&buf, readingsVer)
		}
	}
}

func (s *Server) writeStatus(buf *bytes.Buffer) {
	writeEvent(buf, "status", "", s.statusView())
}

func (s *Server) writeReadings(buf *bytes.Buffer, since uint64) uint64 {
	devs, ver := s.live.changedSince(since)
	for _, d := range devs {
		writeEvent(buf, "reading", "", d)
	}
	return ver
}

// writeEvent writes one SSE frame. JSON never holds a raw newline, so the
// data fits one data: line.
func writeEvent(buf *bytes.Buffer, name, id string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	buf.WriteString("event: ")
	buf.WriteString(name)
	buf.WriteByte('\n')
	if id != "" {
		buf.WriteString("id: ")
		buf.WriteString(id)
		buf.WriteByte('\n')
	}
	buf.WriteString("data: ")
	buf.Write(data)
	buf.WriteString("\n\n")
}
