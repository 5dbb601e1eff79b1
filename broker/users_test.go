package broker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"golang.org/x/crypto/bcrypt"
)

// hashA is a bcrypt hash (cost 4) of "a", for files in tests.
const hashA = "$2a$04$pPZ9eWzgAUv.g.WCX.oDOO9T77ON6/7253rH9cNUxFcnv3wmzP1z2"

func TestHashA(t *testing.T) {
	if err := bcrypt.CompareHashAndPassword([]byte(hashA), []byte("a")); err != nil {
		t.Fatal(err)
	}
}

func TestParseUsers(t *testing.T) {
	good := "# comment\n\nvigil:" + hashA + ":admin\n  pump1:" + hashA + ":device:sensors/pump1/  \nbridge:" + hashA + ":device:site:3/x\n"
	us, err := ParseUsers([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []User{{"vigil", []byte(hashA), RoleAdmin, ""}, {"pump1", []byte(hashA), RoleDevice, "sensors/pump1"},
		{"bridge", []byte(hashA), RoleDevice, "site:3/x"}}
	if len(us) != len(want) {
		t.Fatalf("%d users, want %d", len(us), len(want))
	}
	for i := range want {
		if us[i].Name != want[i].Name || string(us[i].Hash) != hashA || us[i].Role != want[i].Role || us[i].Prefix != want[i].Prefix {
			t.Errorf("user %d: %+v, want %+v", i, us[i], want[i])
		}
	}
	for _, tc := range []struct{ src, want string }{
		{"vigil:in5ide\n", `line 1: user "vigil": the password is not a bcrypt hash; passwords in clear are refused: write the entry with ` + "`vigil passwd FILE vigil`"},
		{"vigil\n", `line 1: user "vigil": want NAME:HASH:admin`},
		{":" + hashA + ":admin\n", "line 1: empty user name"},
		{"a b:" + hashA + ":admin\n", "contains a space"},
		{"v:" + hashA + "\n", `line 1: user "v": no role`},
		{"v:" + hashA + ":root\n", `line 1: user "v": role "root": want admin or device`},
		{"v:" + hashA + ":admin:x\n", "an admin has no prefix"},
		{"v:" + hashA + ":device\n", "a device needs its topic prefix"},
		{"v:" + hashA + ":device:\n", "prefix: empty"},
		{"v:" + hashA + ":device:a/+/b\n", "wildcard"},
		{"v:" + hashA + ":device:#\n", "wildcard"},
		{"v:" + hashA + ":device:$SYS\n", "starts with $"},
		{"v:" + hashA + ":admin\nv:" + hashA + ":admin\n", `line 2: user "v": also on line 1`},
	} {
		_, err := ParseUsers([]byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
	// Every problem at once.
	_, err = ParseUsers([]byte("a:plain\nb:" + hashA + ":admin\nc:x:admin\n"))
	var es UsersErrors
	if !errors.As(err, &es) || len(es) != 2 || es[0].Line != 1 || es[1].Line != 3 {
		t.Fatalf("errors %v", err)
	}
}

func TestLoadUsersNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "broker.users")
	if err := os.WriteFile(p, []byte("ok:"+hashA+":admin\nvigil:in5ide\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadUsers(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":2:1: user \"vigil\"") {
		t.Fatalf("error %v", err)
	}
	if err := os.WriteFile(p, []byte("# nobody yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadUsers(p); err == nil || !strings.Contains(err.Error(), ":1:1: no users") {
		t.Fatalf("an empty users file: %v (it would let anyone in)", err)
	}
	if _, err := LoadUsers(p + ".missing"); err == nil {
		t.Fatal("no error for a missing file")
	}
}

func TestUnder(t *testing.T) {
	for _, tc := range []struct {
		topic, prefix string
		want          bool
	}{
		{"sensors/pump1", "sensors/pump1", true},
		{"sensors/pump1/t", "sensors/pump1", true},
		{"sensors/pump1/#", "sensors/pump1", true},
		{"sensors/pump10", "sensors/pump1", false},
		{"sensors/pump", "sensors/pump1", false},
		{"sensors/+", "sensors/pump1", false},
		{"#", "sensors/pump1", false},
		{"sensors/pump1", "", false},
	} {
		if got := under(tc.topic, tc.prefix); got != tc.want {
			t.Errorf("under(%q, %q) = %v", tc.topic, tc.prefix, got)
		}
	}
}

func TestFormatUserRoundTrip(t *testing.T) {
	for _, u := range []User{{"a", []byte(hashA), RoleAdmin, ""}, {"d", []byte(hashA), RoleDevice, "x/y"}} {
		got, err := ParseUsers([]byte(FormatUser(u)))
		if err != nil || len(got) != 1 || got[0].Name != u.Name || got[0].Prefix != u.Prefix || got[0].Role != u.Role {
			t.Errorf("%+v: %+v %v", u, got, err)
		}
	}
}

// FuzzParseUsers: any input gives users or line errors, never a panic;
// every user it accepts is valid for New and writes back to itself.
func FuzzParseUsers(f *testing.F) {
	f.Add("vigil:" + hashA + ":admin\npump1:" + hashA + ":device:sensors/pump1\n")
	f.Add("# c\nvigil:in5ide\n")
	f.Add("a:" + hashA + ":device:a:b/c/\n")
	f.Add("a:$2b$04$:admin")
	f.Fuzz(func(t *testing.T, src string) {
		us, err := ParseUsers([]byte(src))
		if err != nil {
			var es UsersErrors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %v is not UsersErrors", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, u := range us {
			if CheckUserName(u.Name) != "" || seen[u.Name] {
				t.Fatalf("accepted user %q", u.Name)
			}
			seen[u.Name] = true
			if u.Role == RoleDevice && (u.Prefix == "" || strings.ContainsAny(u.Prefix, "+#") || strings.HasSuffix(u.Prefix, "/")) {
				t.Fatalf("accepted prefix %q", u.Prefix)
			}
			back, err := ParseUsers([]byte(FormatUser(u)))
			if err != nil || len(back) != 1 || back[0].Name != u.Name || back[0].Prefix != u.Prefix || string(back[0].Hash) != string(u.Hash) {
				t.Fatalf("%+v does not write back: %+v %v", u, back, err)
			}
		}
	})
}

// matches is MQTT's topic filter matching (levels, + and #), for the fuzz
// test below.
func matches(filter, topic string) bool {
	f, tp := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, l := range f {
		if l == "#" {
			return true
		}
		if i >= len(tp) || (l != "+" && l != tp[i]) {
			return false
		}
	}
	return len(f) == len(tp)
}

// FuzzDeviceTopics: whatever filter a device may subscribe to matches only
// topics under its prefix, and it may publish only there.
func FuzzDeviceTopics(f *testing.F) {
	f.Add("sensors/pump1", "sensors/pump1/#", "sensors/pump1/t")
	f.Add("sensors/pump1", "sensors/+/t", "sensors/pump2/t")
	f.Add("a", "a/#", "a")
	f.Add("a/b", "#", "a/c")
	f.Fuzz(func(t *testing.T, prefix, filter, topic string) {
		p, msg := CleanPrefix(prefix)
		if msg != "" || strings.ContainsAny(topic, "+#") || strings.HasPrefix(filter, "$") || strings.HasPrefix(topic, "$") {
			return
		}
		u := User{Name: "d", Role: RoleDevice, Prefix: p}
		inside := topic == p || strings.HasPrefix(topic, p+"/")
		if u.mayPublish(topic) != inside {
			t.Fatalf("prefix %q: mayPublish(%q) = %v", p, topic, !inside)
		}
		if u.maySubscribe(filter) && matches(filter, topic) && !inside {
			t.Fatalf("prefix %q: filter %q allowed, and it matches %q", p, filter, topic)
		}
	})
}

// BenchmarkACLDevice: the topic rules run on every PUBLISH of a device
// and on every delivery to it.
func BenchmarkACLDevice(b *testing.B) {
	h, err := newAuthHook([]User{{Name: "pump1", Hash: []byte(hashA), Role: RoleDevice, Prefix: "sensors/pump1"}})
	if err != nil {
		b.Fatal(err)
	}
	h.hits = new(counters)
	cl := &mqtt.Client{}
	cl.Properties.Username = []byte("pump1")
	b.ReportAllocs()
	for b.Loop() {
		if !h.OnACLCheck(cl, "sensors/pump1/temperature", true) {
			b.Fatal("denied")
		}
	}
}
