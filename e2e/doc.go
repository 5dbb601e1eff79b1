//go:build e2e

// Package e2e holds vigil's end-to-end tests (`make e2e`): the real `vigil`
// binary against real Mosquitto brokers (plain, TLS with passwords, TLS
// with client certificates), the embedded broker with TLS and users, the
// HTTP token, the crash test against Mosquitto, and the web UI driven in a
// headless Chromium.
//
// Every file carries the build tag e2e, so `go test ./...` skips the package:
// it needs /usr/sbin/mosquitto and /usr/bin/chromium (Debian's packages
// mosquitto and chromium). It starts every broker itself on free loopback
// ports and never listens beyond 127.0.0.1.
//
// It drives vigil only from the outside (the binary, MQTT, HTTP, the
// browser) and imports no vigil package but event (for AlertID) and conn
// (a plain MQTT client), so it tests what a user sees.
package e2e
