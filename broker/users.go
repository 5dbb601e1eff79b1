package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Role is what a broker user may do.
type Role string

const (
	// RoleAdmin publishes and subscribes anywhere, `#` included: vigil's
	// own connections, an operator's tools, a bridge.
	RoleAdmin Role = "admin"
	// RoleDevice publishes, and subscribes, only under its Prefix: a
	// device cannot pose as another one or read the others' readings.
	RoleDevice Role = "device"
)

// User is one entry of the users file.
type User struct {
	Name string
	// Hash is the bcrypt hash of the password ($2a$, $2b$ or $2y$).
	Hash []byte
	Role Role
	// Prefix, for a device, is the topic it owns: it may publish to
	// Prefix itself and to every topic below it (Prefix/...), and
	// subscribe to filters that stay there. No wildcards, no trailing /.
	Prefix string
}

// UsersFileMax bounds the users file: it is read whole at start.
const UsersFileMax = 1 << 20

// UsersError is a problem on one line of a users file.
type UsersError struct {
	File string // empty when parsed from bytes
	Line int
	Msg  string
}

func (e UsersError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d:1: %s", e.File, e.Line, e.Msg)
}

// UsersErrors is every problem of a users file, in line order.
type UsersErrors []UsersError

func (es UsersErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// LoadUsers reads a users file (see ParseUsers). Its errors are a
// UsersErrors naming path, or an error reading it.
func LoadUsers(path string) ([]User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, UsersFileMax+1)); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	if buf.Len() > UsersFileMax {
		return nil, UsersErrors{{path, 1, fmt.Sprintf("larger than %d bytes", UsersFileMax)}}
	}
	users, err := ParseUsers(buf.Bytes())
	var es UsersErrors
	if errors.As(err, &es) {
		for i := range es {
			es[i].File = path
		}
		return nil, es
	}
	if err == nil && len(users) == 0 {
		// No users would mean anonymous clients: not what naming a users
		// file asks for.
		return nil, UsersErrors{{path, 1, "no users: add one with `vigil passwd " + path + " USER`"}}
	}
	return users, err
}

// ParseUsers reads a users file: one user per line,
//
//	NAME:BCRYPT-HASH:admin
//	NAME:BCRYPT-HASH:device:PREFIX
//
// Blank lines and lines starting with # are skipped. `vigil passwd` writes
// entries. A password in clear (the format before hashing) is refused, with
// the command that replaces it. Every problem is reported, as UsersErrors.
func ParseUsers(src []byte) ([]User, error) {
	var users []User
	var errs UsersErrors
	seen := map[string]int{}
	for i, raw := range strings.Split(string(src), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		u, err := parseUserLine(line)
		if err != "" {
			errs = append(errs, UsersError{Line: i + 1, Msg: err})
			continue
		}
		if prev, ok := seen[u.Name]; ok {
			errs = append(errs, UsersError{Line: i + 1, Msg: fmt.Sprintf("user %q: also on line %d", u.Name, prev)})
			continue
		}
		seen[u.Name] = i + 1
		users = append(users, u)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return users, nil
}

func parseUserLine(line string) (User, string) {
	f := strings.SplitN(line, ":", 4)
	name := f[0]
	if msg := CheckUserName(name); msg != "" {
		return User{}, msg
	}
	if len(f) < 2 || f[1] == "" {
		return User{}, fmt.Sprintf("user %q: want NAME:HASH:admin or NAME:HASH:device:PREFIX", name)
	}
	hash := []byte(f[1])
	if _, err := bcrypt.Cost(hash); err != nil {
		return User{}, fmt.Sprintf("user %q: the password is not a bcrypt hash; passwords in clear are refused: write the entry with `vigil passwd FILE %s`", name, name)
	}
	if len(f) < 3 {
		return User{}, fmt.Sprintf("user %q: no role: want NAME:HASH:admin or NAME:HASH:device:PREFIX", name)
	}
	u := User{Name: name, Hash: hash, Role: Role(f[2])}
	switch u.Role {
	case RoleAdmin:
		if len(f) == 4 {
			return User{}, fmt.Sprintf("user %q: an admin has no prefix", name)
		}
	case RoleDevice:
		if len(f) < 4 {
			return User{}, fmt.Sprintf("user %q: a device needs its topic prefix: NAME:HASH:device:PREFIX", name)
		}
		p, msg := CleanPrefix(f[3])
		if msg != "" {
			return User{}, fmt.Sprintf("user %q: prefix: %s", name, msg)
		}
		u.Prefix = p
	default:
		return User{}, fmt.Sprintf("user %q: role %q: want admin or device", name, f[2])
	}
	return u, ""
}

// CheckUserName returns why name cannot be a user name, or "".
func CheckUserName(name string) string {
	switch {
	case name == "":
		return "empty user name"
	case len(name) > 256:
		return "user name longer than 256 bytes"
	case !utf8.ValidString(name):
		return "user name is not UTF-8"
	case strings.ContainsRune(name, ':'):
		return fmt.Sprintf("user name %q contains ':'", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("user name %s contains a space or control character", strconv.Quote(name))
		}
	}
	return ""
}

// CleanPrefix checks a device's topic prefix and drops a trailing /.
func CleanPrefix(p string) (string, string) {
	p = strings.TrimSuffix(p, "/")
	switch {
	case p == "":
		return "", "empty"
	case len(p) > 1024:
		return "", "longer than 1024 bytes"
	case !utf8.ValidString(p):
		return "", "not UTF-8"
	case strings.ContainsAny(p, "+#\x00"):
		return "", fmt.Sprintf("%q contains a wildcard (+ or #) or NUL", p)
	case strings.HasSuffix(p, "/"):
		return "", fmt.Sprintf("%q ends with an empty level", p+"/")
	case strings.TrimSpace(p) != p:
		// A users file's lines are trimmed: such a prefix would not
		// read back the same (the fuzz test found "a/ /").
		return "", fmt.Sprintf("%q begins or ends with a space", p)
	case p[0] == '$':
		return "", fmt.Sprintf("%q starts with $ (reserved for the broker)", p)
	}
	return p, ""
}

// FormatUser is u's line in a users file (without the newline).
func FormatUser(u User) string {
	s := u.Name + ":" + string(u.Hash) + ":" + string(u.Role)
	if u.Role == RoleDevice {
		s += ":" + u.Prefix
	}
	return s
}

// HashPassword hashes a password for a users file at bcrypt's default
// cost (10: about 50 ms on a Raspberry Pi 4, and once per connection at
// most: a verified password is remembered while the broker runs).
func HashPassword(password []byte) ([]byte, error) {
	if len(password) == 0 {
		return nil, errors.New("empty password")
	}
	if len(password) > 72 {
		return nil, errors.New("password longer than 72 bytes (bcrypt's limit)")
	}
	return bcrypt.GenerateFromPassword(password, bcrypt.DefaultCost)
}

// UserNameOf returns the user name in a users-file line, if it has one:
// what `vigil passwd` matches when it replaces an entry, whatever the rest
// of the line (a password in clear included).
func UserNameOf(line string) (string, bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", false
	}
	name, _, ok := strings.Cut(line, ":")
	return name, ok
}

// mayPublish reports whether u may publish to topic.
func (u *User) mayPublish(topic string) bool {
	return u.Role == RoleAdmin || under(topic, u.Prefix)
}

// maySubscribe reports whether u may subscribe to filter: an admin to
// anything, a device to filters that match only topics under its prefix
// (`$share/...` and `$SYS/...` filters are for admins).
func (u *User) maySubscribe(filter string) bool {
	return u.Role == RoleAdmin || under(filter, u.Prefix)
}

// under reports whether topic (or filter) is prefix or below it. A
// wildcard in the levels of prefix itself would have to match literally,
// so `+/x` is not under `a`.
func under(topic, prefix string) bool {
	if prefix == "" || !strings.HasPrefix(topic, prefix) {
		return false
	}
	return len(topic) == len(prefix) || topic[len(prefix)] == '/'
}
