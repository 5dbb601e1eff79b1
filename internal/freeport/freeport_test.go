package freeport

import (
	"net"
	"testing"
)

func TestAddr(t *testing.T) {
	a, err := Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", a)
	if err != nil {
		t.Fatalf("%s not free: %v", a, err)
	}
	l.Close()
	if _, err := Addr("256.0.0.1"); err == nil {
		t.Fatal("a bad host gave an address")
	}
}
