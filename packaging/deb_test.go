package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDeb installs the package named by VIGIL_DEB (make test-deb builds the
// amd64 one) into a throwaway root with dpkg --root, running its maintainer
// scripts chrootless (they honour DPKG_ROOT), then checks the files, the
// user, the unit, that the installed binary accepts the installed config,
// and that an upgrade keeps changed conffiles and state and a purge removes
// state.
func TestDeb(t *testing.T) {
	deb := os.Getenv("VIGIL_DEB")
	if deb == "" {
		t.Skip("VIGIL_DEB not set: run `make test-deb`")
	}
	for _, tool := range []string{"dpkg", "systemd-sysusers", "systemd-analyze", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install dpkg and systemd", tool)
		}
	}
	if os.Getuid() != 0 {
		t.Skip("needs root: dpkg writes root-owned files and the check runs in a chroot")
	}
	root := newRoot(t)
	dpkg(t, root, "-i", deb)

	t.Run("files", func(t *testing.T) {
		for _, c := range []struct {
			path string
			mode os.FileMode
		}{
			{"usr/bin/vigil", 0o755},
			{"lib/systemd/system/vigil.service", 0o644},
			{"usr/lib/sysusers.d/vigil.conf", 0o644},
			{"etc/vigil/vigil.yaml", 0o644},
			{"etc/vigil/rules.d/example.yaml", 0o644},
			{"usr/share/doc/vigil/docs/operations.md", 0o644},
			{"usr/share/doc/vigil/examples/vigil.yaml", 0o644},
		} {
			st, err := os.Stat(filepath.Join(root, c.path))
			if err != nil {
				t.Errorf("%s: %v", c.path, err)
				continue
			}
			if st.Mode().Perm() != c.mode {
				t.Errorf("%s: mode %v, want %v", c.path, st.Mode().Perm(), c.mode)
			}
		}
	})

	t.Run("conffiles", func(t *testing.T) {
		out := run(t, "dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Conffiles}", "vigil")
		for _, f := range []string{"/etc/vigil/vigil.yaml", "/etc/vigil/rules.d/example.yaml"} {
			if !strings.Contains(out, f+" ") {
				t.Errorf("%s is not a conffile; conffiles:\n%s", f, out)
			}
		}
	})

	uid, gid := vigilUser(t, root)
	t.Run("user and state directory", func(t *testing.T) {
		st, err := os.Stat(filepath.Join(root, "var/lib/vigil"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o750 {
			t.Errorf("/var/lib/vigil mode %v, want 0750", st.Mode().Perm())
		}
		if o := owner(st); o != [2]int{uid, gid} {
			t.Errorf("/var/lib/vigil owned by %v, want vigil %d:%d", o, uid, gid)
		}
		if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/vigil.service")); err != nil {
			t.Errorf("unit not enabled: %v", err)
		}
	})

	t.Run("unit", func(t *testing.T) {
		unit := filepath.Join(root, "lib/systemd/system/vigil.service")
		b, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"User=vigil", "ExecStartPre=/usr/bin/vigil check /etc/vigil/vigil.yaml",
			"ExecStart=/usr/bin/vigil run -c /etc/vigil/vigil.yaml", "ExecReload=/bin/kill -HUP $MAINPID",
			"Restart=on-failure", "StateDirectory=vigil", "ProtectSystem=strict", "ProtectHome=true",
			"NoNewPrivileges=true", "PrivateTmp=true", "ReadWritePaths=/var/lib/vigil",
			"MemoryHigh=60%", "MemoryMax=75%", "TasksMax=256", "LimitNOFILE=4096",
		} {
			if !bytes.Contains(b, []byte("\n"+want+"\n")) {
				t.Errorf("unit lacks %q", want)
			}
		}
		// verify needs the units vigil's orders name and the programs its
		// Exec lines run: lend it the host's, as a real system has them.
		run(t, "cp", "-an", "/lib/systemd/system/.", filepath.Join(root, "lib/systemd/system"))
		run(t, "mkdir", "-p", filepath.Join(root, "bin"))
		run(t, "cp", "-a", "/bin/kill", filepath.Join(root, "bin/kill"))
		// verify resolves ExecStart in the root and warns about any unknown
		// or misspelt directive; any output is a finding.
		cmd := exec.Command("systemd-analyze", "verify", "--root="+root, "--man=no", "/lib/systemd/system/vigil.service")
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		sec, err := exec.Command("systemd-analyze", "security", "--offline=true", "--root="+root, "--threshold=30", "vigil.service").CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security: exposure above 3.0: %v\n%s", err, sec)
		}
		lines := strings.Split(strings.TrimSpace(string(sec)), "\n")
		t.Logf("systemd-analyze security: %s", lines[len(lines)-1])
	})

	t.Run("check as vigil", func(t *testing.T) {
		out, err := exec.Command("chroot", "--userspec="+strconv.Itoa(uid)+":"+strconv.Itoa(gid), root,
			"/usr/bin/vigil", "check", "/etc/vigil/vigil.yaml").CombinedOutput()
		if err != nil {
			t.Fatalf("vigil check in the installed root: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "ok: ") || strings.Contains(string(out), " 0 rules") {
			t.Errorf("vigil check: %s", out)
		}
		t.Logf("%s", bytes.TrimSpace(out))
	})

	t.Run("upgrade keeps changed config and state", func(t *testing.T) {
		cfg := filepath.Join(root, "etc/vigil/vigil.yaml")
		b, _ := os.ReadFile(cfg)
		changed := append([]byte("gateway: line3\n"), b...)
		if err := os.WriteFile(cfg, changed, 0o644); err != nil {
			t.Fatal(err)
		}
		example := filepath.Join(root, "etc/vigil/rules.d/example.yaml")
		if err := os.Remove(example); err != nil {
			t.Fatal(err)
		}
		db := filepath.Join(root, "var/lib/vigil/vigil.db")
		if err := os.WriteFile(db, []byte("state"), 0o640); err != nil {
			t.Fatal(err)
		}
		dpkg(t, root, "-i", deb)
		if got, _ := os.ReadFile(cfg); !bytes.Equal(got, changed) {
			t.Errorf("upgrade replaced the changed vigil.yaml")
		}
		if _, err := os.Stat(example); err == nil {
			t.Errorf("upgrade brought back the deleted example rules")
		}
		if got, _ := os.ReadFile(db); string(got) != "state" {
			t.Errorf("upgrade lost the state database")
		}
	})

	t.Run("remove keeps config, purge removes state", func(t *testing.T) {
		dpkg(t, root, "-r", "vigil")
		if _, err := os.Stat(filepath.Join(root, "usr/bin/vigil")); err == nil {
			t.Errorf("remove left /usr/bin/vigil")
		}
		if _, err := os.Stat(filepath.Join(root, "etc/vigil/vigil.yaml")); err != nil {
			t.Errorf("remove deleted the config: %v", err)
		}
		dpkg(t, root, "-P", "vigil")
		for _, p := range []string{"etc/vigil/vigil.yaml", "var/lib/vigil", "etc/systemd/system/multi-user.target.wants/vigil.service"} {
			if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
				t.Errorf("purge left /%s", p)
			}
		}
	})
}

// newRoot makes the smallest root dpkg accepts: an empty database and the
// directories the scripts write to.
func newRoot(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc", "var/lib", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// dpkg runs dpkg on root. Scripts run chrootless, on the host's tools, with
// DPKG_ROOT set; dependencies (systemd) are the host's, not the root's.
func dpkg(t *testing.T, root string, args ...string) {
	t.Helper()
	a := append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends", "--log=/dev/null"}, args...)
	run(t, "dpkg", a...)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// vigilUser reads vigil's uid and gid from the root's passwd.
func vigilUser(t *testing.T, root string) (uid, gid int) {
	b, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) == 7 && f[0] == "vigil" {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			if uid == 0 || uid >= 1000 || f[6] != "/usr/sbin/nologin" {
				t.Errorf("vigil user %q: want a system uid and nologin", l)
			}
			return uid, gid
		}
	}
	t.Fatalf("no vigil user in the root's /etc/passwd:\n%s", b)
	return 0, 0
}
