// Package freeport finds a TCP port that was free a moment ago, for a
// listener whose address must be known before it starts (the demo's
// embedded broker, tests that restart a gateway on the same address).
package freeport

import "net"

// Addr returns host:port with a port on host that was free when asked.
// Another program may take it before it is used.
func Addr(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
