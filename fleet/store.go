package fleet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Store keeps the last applied bundle in a directory (fleet.rules_dir), as
// the bundle.json it arrived as, so that the next start runs it even when
// the broker cannot be reached. Writes are atomic: a new file is synced,
// renamed over the old one, and the directory synced.
type Store struct{ Dir string }

const storeFile = "bundle.json"

// Path is the stored bundle's file.
func (s Store) Path() string { return filepath.Join(s.Dir, storeFile) }

// Save replaces the stored bundle with b.
func (s Store) Save(b *Bundle) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("fleet rules_dir: %w", err)
	}
	f, err := os.CreateTemp(s.Dir, ".bundle-*.tmp")
	if err != nil {
		return fmt.Errorf("fleet rules_dir: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b.Marshal())
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
		return fmt.Errorf("fleet rules_dir: save bundle: %w", err)
	}
	return syncDir(s.Dir)
}

// Clear removes the stored bundle (an empty retained payload was received).
func (s Store) Clear() error {
	if err := os.Remove(s.Path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fleet rules_dir: %w", err)
	}
	return syncDir(s.Dir)
}

// Load reads the stored bundle; nil, nil when there is none. The bundle is
// parsed, not verified.
func (s Store) Load() (*Bundle, error) {
	data, err := os.ReadFile(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet rules_dir: %w", err)
	}
	b, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path(), err)
	}
	return b, nil
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
