package ui

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// isLoopbackAddr reports whether a listen address binds loopback only. An
// empty host (all interfaces) or a name other than localhost is not:
// resolving it could later name a public interface.
func isLoopbackAddr(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	return isLoopbackHost(host), nil
}

func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// fromLoopback reports whether the request's peer is on this host.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokenOK compares in constant time. Hashing first makes the comparison
// independent of the lengths too.
func tokenOK(got, want string) bool {
	if got == "" || want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// access is how much an endpoint needs.
type access int

const (
	open    access = iota // /healthz, the static page
	read                  // the API and /metrics
	sseRead               // /api/events: like read, but also ?access_token= (EventSource cannot set headers)
	mutate                // POST /api/reload, POST /api/dead-letters/retry
)

// guard wraps h with the auth rules of docs/api.md:
//   - with a token, read endpoints need it (Authorization: Bearer, or
//     ?access_token= on /api/events only);
//   - without a token the server listens on loopback only, and requests
//     must name a loopback host, which stops DNS-rebinding pages from
//     reading the API through a victim's browser;
//   - reload needs the token when one is set, and a loopback peer when not;
//     a cross-origin browser request is refused either way (CSRF).
func (s *Server) guard(need access, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if need == open {
			h(w, r)
			return
		}
		if s.o.Token == "" && !isLoopbackHost(hostOnly(r.Host)) {
			writeError(w, http.StatusForbidden, "host not allowed: without a token the API answers only to a loopback host name")
			return
		}
		if need == mutate && !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
		if s.o.Token != "" {
			tok := bearer(r)
			if tok == "" && need == sseRead {
				tok = r.URL.Query().Get("access_token")
			}
			if !tokenOK(tok, s.o.Token) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		} else if need == mutate && !fromLoopback(r) {
			writeError(w, http.StatusForbidden, "without a configured token, reload and retry are allowed from loopback only")
			return
		}
		h(w, r)
	})
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// sameOrigin accepts requests without an Origin header (curl, scripts) and
// browser requests whose Origin is this very host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}
