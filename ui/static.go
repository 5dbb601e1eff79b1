package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"time"
)

// The page is three files with no build step: what is in web/ is what the
// browser gets. They hold no data and no secret, so they are served without
// a token; everything they show comes from the API, which checks it.
//
//go:embed web/index.html web/app.js web/app.css
var webFS embed.FS

type asset struct {
	body  []byte
	ctype string
	etag  string
}

var assets = func() map[string]asset {
	m := map[string]asset{}
	for name, ctype := range map[string]string{
		"index.html": "text/html; charset=utf-8",
		"app.js":     "text/javascript; charset=utf-8",
		"app.css":    "text/css; charset=utf-8",
	} {
		b, err := webFS.ReadFile("web/" + name)
		if err != nil {
			panic(err) // the embed directive above guarantees the files
		}
		sum := sha256.Sum256(b)
		m["/"+name] = asset{b, ctype, `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	m["/"] = m["/index.html"]
	return m
}()

// handleStatic serves the page. The ETag (a hash of the content) lets a
// phone revalidate instead of downloading again.
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := assets[path.Clean(r.URL.Path)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
