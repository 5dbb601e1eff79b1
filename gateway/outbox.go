package gateway

import (
	"github.com/vigil-gw/vigil/event"
	"github.com/vigil-gw/vigil/store"
)

// outbox is the database as the forwarder sees it (conn.Outbox). Its
// signal tells whoever waits (flushOutbox, at a stop) that the forwarder
// has read the outbox or removed what upstream acknowledged: the moments
// its length or the forwarder's chances can change.
type outbox struct {
	db *store.DB
	signal
}

func newOutbox(db *store.DB) *outbox { return &outbox{db: db} }

func (o *outbox) PendingBodies(limit int, skip func(id string) bool) ([]event.Outgoing, error) {
	defer o.wake()
	return o.db.PendingBodies(limit, skip)
}

func (o *outbox) Delivered(ids []string) error {
	defer o.wake()
	return o.db.Delivered(ids)
}

func (o *outbox) SetAside(id, reason string, attempts int) error {
	defer o.wake()
	return o.db.SetAside(id, reason, attempts)
}
