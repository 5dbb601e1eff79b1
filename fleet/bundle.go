// Package fleet owns what vigil's gateways and its fleet commands exchange
// over the site's MQTT broker: signed rule bundles (their format, the
// signed bytes, ed25519 signing and verification, the issued-time order),
// the status, health and rules-status payloads, the key files, and the
// Agent that decides which bundle a gateway runs, applies it and keeps the
// last good one on disk.
//
// It imports only the standard library. What it needs from the gateway it
// declares here: a Publisher and an ApplyFunc.
package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits of a bundle, checked before anything is verified or stored.
const (
	MaxPayload  = 4 << 20 // bytes of a bundle's JSON
	MaxFiles    = 256
	MaxNameLen  = 128 // a file name, a version, a key name
	signedMagic = "vigil-rules-v1\n"
)

// Bundle is a signed set of rule files, as published on a rules topic.
type Bundle struct {
	Version string            `json:"version"`
	Issued  string            `json:"issued"` // RFC 3339, signed as written
	Files   map[string]string `json:"files"`  // file name -> rule file text
	Key     string            `json:"key"`    // the signing key's name
	// Signature is the base64 (standard, padded) ed25519 signature of
	// SignedBytes.
	Signature string `json:"signature"`
}

var (
	fileNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\.ya?ml$`)
	keyNameRe  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
)

// Errors a caller may branch on.
var (
	ErrUnknownKey   = errors.New("signed by a key that is not in public_keys")
	ErrBadSignature = errors.New("signature does not verify")
)

// SignedBytes is what the signature covers:
//
//	"vigil-rules-v1\n" version "\n" issued "\n"
//
// then, for each file in byte order of its name, name "\n" length "\n"
// text, the length being the text's size in bytes, in decimal.
func (b *Bundle) SignedBytes() []byte {
	names := b.Names()
	n := len(signedMagic) + len(b.Version) + len(b.Issued) + 2
	for _, name := range names {
		n += len(name) + len(b.Files[name]) + 24
	}
	out := make([]byte, 0, n)
	out = append(out, signedMagic...)
	out = append(append(out, b.Version...), '\n')
	out = append(append(out, b.Issued...), '\n')
	for _, name := range names {
		text := b.Files[name]
		out = append(append(out, name...), '\n')
		out = append(strconv.AppendInt(out, int64(len(text)), 10), '\n')
		out = append(out, text...)
	}
	return out
}

// Names returns the file names in byte order.
func (b *Bundle) Names() []string {
	names := make([]string, 0, len(b.Files))
	for name := range b.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// SHA256 is the hex SHA-256 of the signed bytes: what status payloads show
// to tell two bundles apart.
func (b *Bundle) SHA256() string {
	sum := sha256.Sum256(b.SignedBytes())
	return hex.EncodeToString(sum[:])
}

// IssuedTime parses Issued.
func (b *Bundle) IssuedTime() (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, b.Issued)
	if err != nil {
		return time.Time{}, fmt.Errorf("issued %q: want an RFC 3339 time", b.Issued)
	}
	return t, nil
}

// Sign sets Key and Signature. The bundle must be valid (Check).
func (b *Bundle) Sign(keyName string, priv ed25519.PrivateKey) error {
	b.Key = keyName
	b.Signature = base64.StdEncoding.EncodeToString(make([]byte, ed25519.SignatureSize))
	if err := b.Check(); err != nil {
		return err
	}
	b.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, b.SignedBytes()))
	return nil
}

// Check validates the fields' form (not the signature, not the rules):
// names, sizes, the issued time, the signature's encoding.
func (b *Bundle) Check() error {
	var errs []error
	if b.Version == "" || len(b.Version) > MaxNameLen || !printable(b.Version) {
		errs = append(errs, fmt.Errorf("version %q: want 1 to %d printable characters", b.Version, MaxNameLen))
	}
	if _, err := b.IssuedTime(); err != nil {
		errs = append(errs, err)
	}
	if !keyNameRe.MatchString(b.Key) || len(b.Key) > MaxNameLen {
		errs = append(errs, fmt.Errorf("key %q: want a key name ([A-Za-z0-9_.-], at most %d)", b.Key, MaxNameLen))
	}
	if sig, err := base64.StdEncoding.DecodeString(b.Signature); err != nil || len(sig) != ed25519.SignatureSize {
		errs = append(errs, errors.New("signature: want the base64 of a 64-byte ed25519 signature"))
	}
	if len(b.Files) == 0 {
		errs = append(errs, errors.New("files: none"))
	}
	if len(b.Files) > MaxFiles {
		errs = append(errs, fmt.Errorf("files: %d, at most %d", len(b.Files), MaxFiles))
	}
	for _, name := range b.Names() {
		if !fileNameRe.MatchString(name) || len(name) > MaxNameLen {
			errs = append(errs, fmt.Errorf("file name %q: want a plain name ending in .yaml or .yml ([A-Za-z0-9_.-], at most %d)", name, MaxNameLen))
		}
		if !utf8.ValidString(b.Files[name]) {
			errs = append(errs, fmt.Errorf("file %q: not UTF-8 text", name))
		}
	}
	return errors.Join(errs...)
}

// printable: no control characters (a newline would make the signed bytes
// ambiguous) and valid UTF-8.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Parse decodes a bundle payload and checks its form. It does not verify
// the signature (Keys.Verify does).
func Parse(payload []byte) (*Bundle, error) {
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("bundle: %d bytes, at most %d", len(payload), MaxPayload)
	}
	if !utf8.Valid(payload) {
		// encoding/json would replace invalid bytes, and the text
		// verified would not be the text sent.
		return nil, errors.New("bundle: not UTF-8")
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if dec.More() {
		return nil, errors.New("bundle: data after the JSON object")
	}
	if err := b.Check(); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return &b, nil
}

// Marshal is the bundle's JSON payload.
func (b *Bundle) Marshal() []byte {
	out, _ := json.Marshal(b) // strings and a map of strings: cannot fail
	return out
}
