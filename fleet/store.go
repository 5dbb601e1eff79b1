package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Store keeps, in a directory (fleet.rules_dir), the bundle a gateway
// runs, the rules topic it came from, and per rules topic the issue time
// of the last bundle applied from it, so that the next start runs the same
// rules even when the broker cannot be reached, and still refuses older
// bundles. It is one file, fleet.json, written atomically: a new file is
// synced, renamed over the old one, and the directory synced.
type Store struct{ Dir string }

// State is what the Store keeps.
type State struct {
	Bundle *Bundle `json:"bundle"`          // the bundle running; nil for none
	Topic  string  `json:"topic,omitempty"` // the rules topic it came from
	// Issued maps each rules topic to the issued time (as signed) of the
	// last bundle applied from it: an older one from that topic is refused.
	Issued map[string]string `json:"issued"`
}

const storeFile = "fleet.json"

// Path is the store's file.
func (s Store) Path() string { return filepath.Join(s.Dir, storeFile) }

// Save replaces the stored state.
func (s Store) Save(st State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("fleet rules_dir: %w", err)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("fleet rules_dir: %w", err)
	}
	f, err := os.CreateTemp(s.Dir, ".fleet-*.tmp")
	if err != nil {
		return fmt.Errorf("fleet rules_dir: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.Path())
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fleet rules_dir: save: %w", err)
	}
	return syncDir(s.Dir)
}

// Load reads the stored state; the zero State when there is none. The
// bundle's form is checked, not its signature.
func (s Store) Load() (State, error) {
	data, err := os.ReadFile(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("fleet rules_dir: %w", err)
	}
	var st State
	if len(data) > 2*MaxPayload {
		return State{}, fmt.Errorf("%s: too large", s.Path())
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, fmt.Errorf("%s: %w", s.Path(), err)
	}
	if st.Bundle != nil {
		if err := st.Bundle.Check(); err != nil {
			return State{}, fmt.Errorf("%s: bundle: %w", s.Path(), err)
		}
	}
	return st, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fleet rules_dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fleet rules_dir: sync: %w", err)
	}
	return nil
}
