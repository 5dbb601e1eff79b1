package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Key files are PEM, as OpenSSL writes them (`openssl genpkey -algorithm
// ed25519`): NAME.key holds a PKCS #8 "PRIVATE KEY", NAME.pub a PKIX
// "PUBLIC KEY". A key's name is its file name without the extension; a
// bundle names the key that signed it, and gateways look it up by that
// name among their public_keys.

// KeyName is the name of the key in path: its base name without .key or
// .pub.
func KeyName(path string) string {
	base := filepath.Base(path)
	for _, ext := range []string{".key", ".pub"} {
		if s, ok := strings.CutSuffix(base, ext); ok {
			return s
		}
	}
	return base
}

// GenerateKey writes a new key pair: prefix+".key" (mode 0600) and
// prefix+".pub". It refuses to overwrite either.
func GenerateKey(prefix string) (pubPath, keyPath string, err error) {
	name := filepath.Base(prefix)
	if !keyNameRe.MatchString(name) || len(name) > MaxNameLen {
		return "", "", fmt.Errorf("key name %q: want [A-Za-z0-9_.-], at most %d characters", name, MaxNameLen)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", err
	}
	keyPath, pubPath = prefix+".key", prefix+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s exists: not overwritten", p)
		}
	}
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(keyPath)
		return "", "", err
	}
	return pubPath, keyPath, nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadPrivateKey reads NAME.key.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ed25519 key", path)
	}
	return priv, nil
}

// ReadPublicKey reads NAME.pub.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ed25519 key", path)
	}
	return pub, nil
}

func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%s: want a PEM %q block", path, typ)
	}
	return blk.Bytes, nil
}

// Keys are the public keys a gateway accepts, by name.
type Keys map[string]ed25519.PublicKey

// LoadKeys reads public key files; two files with the same name are an
// error.
func LoadKeys(paths []string) (Keys, error) {
	ks := Keys{}
	var errs []error
	for _, p := range paths {
		pub, err := ReadPublicKey(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		name := KeyName(p)
		if _, dup := ks[name]; dup {
			errs = append(errs, fmt.Errorf("%s: a key named %q is already listed", p, name))
			continue
		}
		ks[name] = pub
	}
	return ks, errors.Join(errs...)
}

// Verify checks b's signature against the key it names. b must have passed
// Check (Parse does that).
func (ks Keys) Verify(b *Bundle) error {
	pub, ok := ks[b.Key]
	if !ok {
		return fmt.Errorf("key %q: %w", b.Key, ErrUnknownKey)
	}
	sig, err := base64.StdEncoding.DecodeString(b.Signature)
	if err != nil || !ed25519.Verify(pub, b.SignedBytes(), sig) {
		return fmt.Errorf("key %q: %w", b.Key, ErrBadSignature)
	}
	return nil
}
