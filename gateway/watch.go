package gateway

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce lets an editor finish writing (write, rename, chmod) before the
// rules are read again.
const debounce = 300 * time.Millisecond

// watch reloads the rules when a rule file changes. It watches directories,
// not files, because editors replace a file by renaming a new one over it.
// It returns when ctx ends. Without a watcher (the system's inotify
// instances used up) it says so and returns nil: SIGHUP still reloads, and
// the gateway runs on.
func (g *Gateway) watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		g.log.Warn("rules: file watching off; reload with SIGHUP", "err", err)
		return nil
	}
	defer w.Close()
	watch := map[string]bool{}    // directories to watch
	ruleDirs := map[string]bool{} // directories whose *.yaml files are rules
	files := map[string]bool{}    // single rule files
	for _, p := range g.cfg.Rules {
		abs, _ := filepath.Abs(p)
		st, err := os.Stat(abs)
		if err == nil && st.IsDir() {
			_ = filepath.WalkDir(abs, func(path string, de os.DirEntry, err error) error {
				if err == nil && de.IsDir() && (path == abs || !strings.HasPrefix(de.Name(), ".")) {
					watch[path], ruleDirs[path] = true, true
				}
				return nil
			})
			continue
		}
		watch[filepath.Dir(abs)] = true
		files[abs] = true
	}
	for d := range watch {
		if err := w.Add(d); err != nil {
			g.log.Warn("rules: cannot watch directory; reload with SIGHUP", "dir", d, "err", err)
		}
	}
	relevant := func(name string) bool {
		abs, _ := filepath.Abs(name)
		base := filepath.Base(abs)
		if files[abs] {
			return true
		}
		return ruleDirs[filepath.Dir(abs)] && !strings.HasPrefix(base, ".") &&
			(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml"))
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if relevant(ev.Name) {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			g.log.Warn("rules: watch error", "err", err)
		case <-timer.C:
			g.log.Info("rules: file changed, reloading")
			_ = g.Reload(ctx)
		}
	}
}
