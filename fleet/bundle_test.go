package fleet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testKey is a fixed key: ed25519 signatures are deterministic, so the
// golden bundle's signature is too.
func testKey(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

func goldenBundle() *Bundle {
	return &Bundle{Version: "2026-12-07.1", Issued: "2026-12-07T10:00:00Z", Files: map[string]string{
		"pumps.yaml": "rules:\n  - name: hot\n    from: sensors/{d}/t\n    where: t > 80\n",
		"b.yml":      "rules: []\n",
		"Z.yaml":     "é\n", // two bytes of UTF-8: the length counts bytes; "Z" sorts before "b"
	}}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot:\n%q\nwant:\n%q", name, got, want)
	}
}

// TestSignedBytesGolden holds the signed-bytes format (CONTRACT.md,
// "Fleet") and the payload to a golden vector: a change here breaks every
// deployed gateway's verification.
func TestSignedBytesGolden(t *testing.T) {
	b := goldenBundle()
	want := "vigil-rules-v1\n2026-12-07.1\n2026-12-07T10:00:00Z\n" +
		"Z.yaml\n3\né\n" +
		"b.yml\n10\nrules: []\n" +
		"pumps.yaml\n63\nrules:\n  - name: hot\n    from: sensors/{d}/t\n    where: t > 80\n"
	if got := string(b.SignedBytes()); got != want {
		t.Fatalf("signed bytes:\n%q\nwant\n%q", got, want)
	}
	golden(t, "signed-v1.txt", b.SignedBytes())
	_, priv := testKey(1)
	if err := b.Sign("ops-2026", priv); err != nil {
		t.Fatal(err)
	}
	golden(t, "bundle-v1.json", b.Marshal())
}

func TestVerify(t *testing.T) {
	pub, priv := testKey(1)
	otherPub, otherPriv := testKey(2)
	keys := Keys{"ops": pub, "other": otherPub}
	sign := func(name string, k ed25519.PrivateKey, edit func(*Bundle)) *Bundle {
		b := goldenBundle()
		if err := b.Sign(name, k); err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(b)
		}
		// Through the wire format, as a gateway sees it.
		out, err := Parse(b.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		b    *Bundle
		want error
	}{
		{"good", sign("ops", priv, nil), nil},
		{"second key", sign("other", otherPriv, nil), nil},
		{"unknown key", sign("nobody", priv, nil), ErrUnknownKey},
		{"named key, other key's signature", sign("ops", otherPriv, nil), ErrBadSignature},
		{"file text tampered", sign("ops", priv, func(b *Bundle) { b.Files["b.yml"] = "rules: [] \n" }), ErrBadSignature},
		{"file renamed", sign("ops", priv, func(b *Bundle) { b.Files["c.yml"] = b.Files["b.yml"]; delete(b.Files, "b.yml") }), ErrBadSignature},
		{"file added", sign("ops", priv, func(b *Bundle) { b.Files["x.yaml"] = "" }), ErrBadSignature},
		{"version changed", sign("ops", priv, func(b *Bundle) { b.Version += "x" }), ErrBadSignature},
		{"issued changed", sign("ops", priv, func(b *Bundle) { b.Issued = "2026-12-07T10:00:01Z" }), ErrBadSignature},
		// Moving bytes between a name and a text keeps the concatenation
		// but not the lengths.
		{"boundary moved", sign("ops", priv, func(b *Bundle) {
			b.Files["pumps.yaml"] = "rules: []\n" + b.Files["pumps.yaml"]
			b.Files["b.yml"] = ""
		}), ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := keys.Verify(tc.b)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	good := goldenBundle()
	_, priv := testKey(1)
	if err := good.Sign("ops", priv); err != nil {
		t.Fatal(err)
	}
	sig := good.Signature
	for _, tc := range []struct{ name, payload, want string }{
		{"not json", `rules:`, "bundle: invalid character"},
		{"trailing data", string(good.Marshal()) + "{}", "data after the JSON object"},
		{"no files", `{"version":"1","issued":"2026-12-07T10:00:00Z","files":{},"key":"ops","signature":"` + sig + `"}`, "files: none"},
		{"bad issued", `{"version":"1","issued":"yesterday","files":{"a.yaml":""},"key":"ops","signature":"` + sig + `"}`, `issued "yesterday"`},
		{"newline in version", `{"version":"1\n2","issued":"2026-12-07T10:00:00Z","files":{"a.yaml":""},"key":"ops","signature":"` + sig + `"}`, "version"},
		{"path in file name", `{"version":"1","issued":"2026-12-07T10:00:00Z","files":{"../a.yaml":""},"key":"ops","signature":"` + sig + `"}`, `file name "../a.yaml"`},
		{"not yaml", `{"version":"1","issued":"2026-12-07T10:00:00Z","files":{"a.txt":""},"key":"ops","signature":"` + sig + `"}`, `file name "a.txt"`},
		{"short signature", `{"version":"1","issued":"2026-12-07T10:00:00Z","files":{"a.yaml":""},"key":"ops","signature":"AAAA"}`, "signature: want"},
		{"bad key name", `{"version":"1","issued":"2026-12-07T10:00:00Z","files":{"a.yaml":""},"key":"a/b","signature":"` + sig + `"}`, `key "a/b"`},
		{"not utf-8", "{\"version\":\"\xff\"}", "not UTF-8"},
		{"too large", `{"version":"` + strings.Repeat("x", MaxPayload) + `"}`, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.payload))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// FuzzParseVerify: no input crashes the parser or the verifier, and what
// verifies is exactly what was signed.
func FuzzParseVerify(f *testing.F) {
	pub, priv := testKey(1)
	keys := Keys{"ops": pub}
	b := goldenBundle()
	if err := b.Sign("ops", priv); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Marshal())
	f.Add([]byte(`{"version":"1","issued":"2026-12-07T10:00:00Z","files":{"a.yaml":"x"},"key":"ops","signature":"` + b.Signature + `"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, err := Parse(payload)
		if err != nil {
			return
		}
		if err := keys.Verify(got); err != nil {
			return
		}
		// Only the golden bundle carries a valid signature: anything
		// that verifies must sign the same bytes.
		if !bytes.Equal(got.SignedBytes(), b.SignedBytes()) {
			t.Fatalf("a different bundle verifies: %q", got.SignedBytes())
		}
		sig, _ := base64.StdEncoding.DecodeString(got.Signature)
		if !ed25519.Verify(pub, got.SignedBytes(), sig) {
			t.Fatal("Verify passed a bad signature")
		}
	})
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	pubPath, keyPath, err := GenerateKey(filepath.Join(dir, "ops-2026"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(keyPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", st.Mode(), err)
	}
	if _, _, err := GenerateKey(filepath.Join(dir, "ops-2026")); err == nil {
		t.Fatal("GenerateKey overwrote an existing key")
	}
	priv, err := ReadPrivateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeys([]string{pubPath})
	if err != nil {
		t.Fatal(err)
	}
	b := goldenBundle()
	if err := b.Sign(KeyName(keyPath), priv); err != nil {
		t.Fatal(err)
	}
	if err := keys.Verify(b); err != nil {
		t.Fatalf("a bundle signed with the generated key: %v", err)
	}
	if _, err := ReadPublicKey(keyPath); err == nil {
		t.Fatal("a private key read as a public key")
	}
	if _, err := LoadKeys([]string{pubPath, pubPath}); err == nil {
		t.Fatal("the same key name twice was accepted")
	}
}

func TestStore(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "fleet-rules")}
	if st, err := s.Load(); st.Bundle != nil || st.Issued != nil || err != nil {
		t.Fatalf("empty store: %+v %v", st, err)
	}
	b := goldenBundle()
	_, priv := testKey(1)
	b.Sign("ops", priv)
	if err := s.Save(State{Bundle: b, Topic: "vigil/all/rules", Issued: map[string]string{"vigil/all/rules": b.Issued}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil || got.Bundle.SHA256() != b.SHA256() || got.Bundle.Signature != b.Signature || got.Topic != "vigil/all/rules" || got.Issued["vigil/all/rules"] != b.Issued {
		t.Fatalf("Load after Save: %+v %v", got, err)
	}
	ents, _ := os.ReadDir(s.Dir)
	if len(ents) != 1 {
		t.Fatalf("store dir holds %d entries, want fleet.json alone", len(ents))
	}
	if err := s.Save(State{Issued: got.Issued}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Load(); st.Bundle != nil || st.Issued["vigil/all/rules"] != b.Issued || err != nil {
		t.Fatalf("after saving no bundle: %+v %v", st, err)
	}
	os.WriteFile(s.Path(), []byte("{"), 0o644)
	if _, err := s.Load(); err == nil {
		t.Fatal("a damaged fleet.json loaded")
	}
}

// FuzzStoreLoad: a damaged fleet.json is an error, never a crash, and
// what loads has a bundle of valid form.
func FuzzStoreLoad(f *testing.F) {
	b := goldenBundle()
	_, priv := testKey(1)
	b.Sign("ops", priv)
	dir := f.TempDir()
	s := Store{Dir: dir}
	if err := s.Save(State{Bundle: b, Topic: "vigil/all/rules", Issued: map[string]string{"vigil/all/rules": b.Issued}}); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(s.Path())
	f.Add(good)
	f.Add([]byte(`{"bundle": null, "issued": {}}`))
	f.Add([]byte(`{"bundle": {"files": {"../x.yaml": ""}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(s.Path(), data, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := s.Load()
		if err == nil && st.Bundle != nil {
			if err := st.Bundle.Check(); err != nil {
				t.Fatalf("loaded a bundle of invalid form: %v", err)
			}
		}
	})
}
