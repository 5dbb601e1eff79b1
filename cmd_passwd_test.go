package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/vigil-gw/vigil/broker"
)

func TestPasswd(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "broker.users")

	// A new file: flags after the arguments too; mode 0600.
	if _, errs, code := runCmd(t, "s3cret\n", "passwd", f, "pump1", "-prefix", "sensors/pump1/"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, errs, code := runCmd(t, "adm1n", "passwd", "-role", "admin", f, "vigil"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	st, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	us, err := broker.LoadUsers(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 2 || us[0].Name != "pump1" || us[0].Role != broker.RoleDevice || us[0].Prefix != "sensors/pump1" ||
		us[1].Name != "vigil" || us[1].Role != broker.RoleAdmin {
		t.Fatalf("users %+v", us)
	}
	if bcrypt.CompareHashAndPassword(us[0].Hash, []byte("s3cret")) != nil || bcrypt.CompareHashAndPassword(us[1].Hash, []byte("adm1n")) != nil {
		t.Fatal("hashes do not match the passwords given")
	}

	// An old file with a password in clear: the entry is replaced in
	// place, comments and other lines kept, and the file becomes 0600.
	old := "# site users\nvigil:in5ide\nother:" + string(us[0].Hash) + ":device:x\n"
	if err := os.WriteFile(f, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCmd(t, "new\n", "passwd", f, "vigil", "-role", "admin"); code != 0 || !strings.Contains(errs, "replaced") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, _ := os.ReadFile(f)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || lines[0] != "# site users" || !strings.HasPrefix(lines[1], "vigil:$2") || !strings.HasPrefix(lines[2], "other:") {
		t.Fatalf("file:\n%s", b)
	}
	if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v after rewriting", st.Mode().Perm())
	}

	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"pw\n", []string{f, "d"}, "-prefix: empty"},
		{"pw\n", []string{f, "d", "-prefix", "a/#"}, "wildcard"},
		{"pw\n", []string{f, "a", "-role", "admin", "-prefix", "x"}, "an admin has no -prefix"},
		{"pw\n", []string{f, "a", "-role", "root"}, `-role "root"`},
		{"pw\n", []string{f, "a:b", "-role", "admin"}, "contains ':'"},
		{"\n", []string{f, "a", "-role", "admin"}, "empty password"},
		{"pw\n", []string{f}, "usage: vigil passwd"},
	} {
		_, errs, code := runCmd(t, tc.stdin, append([]string{"passwd"}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errs, tc.want)
		}
	}
}

// TestSecretFilesRefused: `vigil check` and `vigil run` refuse a secret
// file that group or others may read, naming the key's position and the
// command that fixes it.
func TestSecretFilesRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	write("broker.users", "vigil:"+string(h)+":admin\n", 0o640)
	write("mqtt.pass", "pw\n", 0o644)
	write("up.pass", "pw\n", 0o604)
	write("http.token", "tok\n", 0o660)
	write("key.pem", "not read\n", 0o640)
	write("cert.pem", "not a secret\n", 0o644)
	write("rules.yaml", "rules:\n  - {name: r, from: a/b}\n", 0o644)
	cfg := `gateway: secrets
broker: {listen: "127.0.0.1:0", users_file: broker.users}
mqtt: {broker: "tcp://127.0.0.1:1", password_file: mqtt.pass}
upstream: {broker: "tcp://127.0.0.1:1", password_file: up.pass, tls: {cert: cert.pem, key: key.pem}}
http: {listen: off, token_file: http.token}
state: {path: vigil.db}
rules: rules.yaml
`
	write("vigil.yaml", cfg, 0o644)
	cfgPath := filepath.Join(dir, "vigil.yaml")
	_, errs, code := runCmd(t, "", "check", cfgPath)
	if code != 1 {
		t.Fatalf("check: exit %d, stderr:\n%s", code, errs)
	}
	for _, want := range []string{
		fmt.Sprintf("vigil.yaml:2:45: broker: users_file: %s is readable or writable by group or others (mode 0640): a secret must be for vigil's user only: chmod 600 %[1]s", filepath.Join(dir, "broker.users")),
		"vigil.yaml:3:52: mqtt: password_file: ", "(mode 0644)",
		"vigil.yaml:4:56: upstream: password_file: ", "(mode 0604)",
		"vigil.yaml:4:92: upstream: tls: key: ", "key.pem", "(mode 0640)",
		"vigil.yaml:5:33: http: token_file: ", "(mode 0660)",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("check: stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "cert.pem") {
		t.Errorf("a certificate is not a secret:\n%s", errs)
	}
	_, errs, code = runCmd(t, "", "run", "-c", cfgPath)
	if code != 1 || !strings.Contains(errs, "chmod 600") {
		t.Fatalf("run: exit %d, stderr:\n%s", code, errs)
	}

	// Fixed: check passes the secrets (the key is not a real key, but
	// check does not load it).
	for _, f := range []string{"broker.users", "mqtt.pass", "up.pass", "http.token", "key.pem"} {
		if err := os.Chmod(filepath.Join(dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, errs, code := runCmd(t, "", "check", cfgPath); code != 0 {
		t.Fatalf("check after chmod 600: exit %d: %s%s", code, out, errs)
	}

	// A users file with a password in clear fails check, at its line.
	write("broker.users", "vigil:"+string(h)+":admin\ndev:plain\n", 0o600)
	_, errs, code = runCmd(t, "", "check", cfgPath)
	if want := filepath.Join(dir, "broker.users") + `:2:1: user "dev": the password is not a bcrypt hash`; code != 1 || !strings.Contains(errs, want) {
		t.Fatalf("check: exit %d, stderr %q, want %q", code, errs, want)
	}
}

// TestPasswdKeepsOwner: root writing vigil's users file leaves it vigil's
// (else vigil could no longer read its 0600 file).
func TestPasswdKeepsOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give the file another owner")
	}
	f := filepath.Join(t.TempDir(), "broker.users")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 4321, 4322); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCmd(t, "pw\n", "passwd", f, "ops", "-role", "admin"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	st, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 4321 || sys.Gid != 4322 || st.Mode().Perm() != 0o600 {
		t.Fatalf("owner %d:%d mode %v, want 4321:4322 0600", sys.Uid, sys.Gid, st.Mode().Perm())
	}
}
