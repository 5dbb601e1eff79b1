package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"
)

// authHook logs clients in against the users (bcrypt), throttles the
// addresses that fail, caps the sessions held, and applies each user's
// topic rules. Without users every client is an admin: New allows that on
// loopback only.
type authHook struct {
	mqtt.HookBase
	users map[string]*User
	// dummy is compared with for an unknown user, so that timing does not
	// tell which names exist.
	dummy []byte
	// bcrypt takes tens of milliseconds of CPU on a Pi: one at a time, so
	// a flood of logins takes at most one core.
	sem chan struct{}
	// verified remembers, per user, the digest of the password that last
	// matched its hash: a device reconnecting pays for bcrypt once.
	mu       sync.Mutex
	verified map[string][32]byte

	srv         *mqtt.Server
	gate        *gate
	hits        *counters
	maxSessions int
	maxSubs     int
	log         *slog.Logger
}

func newAuthHook(users []User) (*authHook, error) {
	h := &authHook{users: make(map[string]*User, len(users)), sem: make(chan struct{}, 1), verified: map[string][32]byte{}}
	for i := range users {
		u := &users[i]
		if msg := CheckUserName(u.Name); msg != "" {
			return nil, fmt.Errorf("broker users: %s", msg)
		}
		if _, ok := h.users[u.Name]; ok {
			return nil, fmt.Errorf("broker users: %q twice", u.Name)
		}
		if _, err := bcrypt.Cost(u.Hash); err != nil {
			return nil, fmt.Errorf("broker users: %q: %w", u.Name, err)
		}
		if u.Role != RoleAdmin && u.Role != RoleDevice {
			return nil, fmt.Errorf("broker users: %q: role %q", u.Name, u.Role)
		}
		if u.Role == RoleDevice {
			if p, msg := CleanPrefix(u.Prefix); msg != "" || p != u.Prefix {
				return nil, fmt.Errorf("broker users: %q: prefix %q: %s", u.Name, u.Prefix, msg)
			}
		}
		h.users[u.Name] = u
	}
	if len(users) > 0 {
		cost, _ := bcrypt.Cost(users[0].Hash)
		d, err := bcrypt.GenerateFromPassword([]byte("vigil: no such user"), cost)
		if err != nil {
			return nil, fmt.Errorf("broker users: %w", err)
		}
		h.dummy = d
	}
	return h, nil
}

func (h *authHook) ID() string { return "vigil-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnect || b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnSubscribe
}

// OnSubscribe applies MaxSubscriptions: a new filter past it is made
// invalid, which mochi answers with a failure for that filter alone.
func (h *authHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	n := cl.State.Subscriptions.Len()
	for i := range pk.Filters {
		f := &pk.Filters[i]
		if _, ok := cl.State.Subscriptions.Get(f.Filter); ok {
			continue
		}
		if n >= h.maxSubs {
			h.hits.add(HitSubscriptions)
			h.log.Warn("broker: subscription refused", "client", cl.ID, "filter", f.Filter, "limit", HitSubscriptions)
			f.Filter = ""
			continue
		}
		n++
	}
	return pk
}

var errSessionsFull = errors.New("too many sessions")

// OnConnect refuses a CONNECT that would add a session past MaxSessions
// (mochi then closes the connection without a CONNACK).
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if h.srv.Clients.Len() < h.maxSessions {
		return nil
	}
	if _, ok := h.srv.Clients.Get(cl.ID); ok {
		return nil // takes over its own session
	}
	h.hits.add(HitSessions)
	h.log.Warn("broker: connection refused", "client", cl.ID, "remote", cl.Net.Remote, "limit", HitSessions)
	return errSessionsFull
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	ok := h.authenticate(cl, pk) && h.ownSession(cl, pk) && h.willAllowed(cl)
	if ok {
		if gc := gatedConnOf(cl.Net.Conn); gc != nil {
			gc.loggedIn.Store(true)
		}
	}
	return ok
}

func (h *authHook) authenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if len(h.users) == 0 {
		return true
	}
	ip := remoteIPOf(cl)
	if h.gate.throttled(ip) {
		// Failed too often from here: not even the right password is
		// tried (it would cost a bcrypt).
		h.hits.add(HitLoginThrottled)
		return false
	}
	name := string(pk.Connect.Username)
	u, known := h.users[name]
	digest := sha256.Sum256(pk.Connect.Password)
	if known {
		h.mu.Lock()
		v, ok := h.verified[name]
		h.mu.Unlock()
		if ok && subtle.ConstantTimeCompare(v[:], digest[:]) == 1 {
			return true
		}
	}
	hash := h.dummy
	if known {
		hash = u.Hash
	}
	h.sem <- struct{}{}
	err := bcrypt.CompareHashAndPassword(hash, pk.Connect.Password)
	<-h.sem
	if err != nil || !known {
		h.gate.loginFailed(ip)
		h.log.Warn("broker: login failed", "user", name, "remote", cl.Net.Remote)
		return false
	}
	h.mu.Lock()
	h.verified[name] = digest
	h.mu.Unlock()
	return true
}

// ownSession refuses a client id whose session another user holds: a
// device would otherwise take over another's session (its subscriptions,
// its queued messages) or disconnect vigil's own connections by using
// their client id.
func (h *authHook) ownSession(cl *mqtt.Client, pk packets.Packet) bool {
	if len(h.users) == 0 {
		return true
	}
	old, ok := h.srv.Clients.Get(cl.ID)
	if !ok || string(old.Properties.Username) == string(pk.Connect.Username) {
		return true
	}
	h.hits.add(HitClientIDTaken)
	h.log.Warn("broker: client id held by another user", "client", cl.ID, "user", string(pk.Connect.Username), "remote", cl.Net.Remote)
	return false
}

// willAllowed refuses a CONNECT whose will (the message the broker
// publishes when the client vanishes) goes where the user may not publish:
// mochi publishes a will without asking OnACLCheck.
func (h *authHook) willAllowed(cl *mqtt.Client) bool {
	if len(h.users) == 0 || cl.Properties.Will.Flag == 0 {
		return true
	}
	u := h.users[string(cl.Properties.Username)]
	if u != nil && u.mayPublish(cl.Properties.Will.TopicName) {
		return true
	}
	h.hits.add(HitPublishDenied)
	h.log.Warn("broker: will denied", "client", cl.ID, "topic", cl.Properties.Will.TopicName, "remote", cl.Net.Remote)
	return false
}

// OnACLCheck applies the user's topic rules: write is a PUBLISH to topic,
// else a SUBSCRIBE to the filter topic. A denied QoS 0 PUBLISH is dropped,
// a denied QoS 1 or 2 one disconnects an MQTT 3 client (mochi); a denied
// subscription gets "not authorized".
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if len(h.users) == 0 {
		return true
	}
	u := h.users[string(cl.Properties.Username)]
	if u == nil {
		return false // not logged in as a user; cannot happen
	}
	if write {
		if u.mayPublish(topic) {
			return true
		}
		h.hits.add(HitPublishDenied)
		h.log.Warn("broker: publish denied", "user", u.Name, "client", cl.ID, "topic", topic)
		return false
	}
	if u.maySubscribe(topic) {
		return true
	}
	h.hits.add(HitSubscribeDenied)
	h.log.Warn("broker: subscribe denied", "user", u.Name, "client", cl.ID, "filter", topic)
	return false
}
