//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mosquittoOptions choose a Mosquitto's listeners.
type mosquittoOptions struct {
	// TLS adds two listeners, both TLS and password_file: one accepting
	// any client (TLSPort) and one with require_certificate (CertPort).
	TLS *pki
	// Users become the password_file (mosquitto_passwd -b).
	Users map[string]string
	// Persist keeps sessions and queued messages across a restart (SIGTERM
	// saves them), for an upstream whose subscriber must miss nothing.
	Persist bool
	// Global are more lines of mosquitto.conf before the listeners (e.g.
	// "max_packet_size 2048").
	Global string
}

// mosquitto is one Mosquitto process we started; stop and start restart
// it on the same ports.
type mosquitto struct {
	t                       *testing.T
	bin, dir, conf          string
	Port, TLSPort, CertPort int
	cmd                     *exec.Cmd
	done                    chan struct{}
	log                     *logBuf
}

func (m *mosquitto) Addr() string { return fmt.Sprintf("127.0.0.1:%d", m.Port) }

// startMosquitto writes a mosquitto.conf into a temp dir and starts it on
// free loopback ports; it is killed when the test ends.
func startMosquitto(t *testing.T, o mosquittoOptions) *mosquitto {
	t.Helper()
	m := &mosquitto{t: t, bin: tool(t, "VIGIL_MOSQUITTO", "mosquitto", "/usr/sbin/mosquitto"), dir: t.TempDir(), log: &logBuf{}}
	m.Port = freePort(t)
	var c strings.Builder
	// per_listener_settings: each listener has its own authentication.
	fmt.Fprintf(&c, "per_listener_settings true\n")
	fmt.Fprintf(&c, "max_queued_messages 100000\nmax_inflight_messages 100\n")
	fmt.Fprintf(&c, "log_dest stderr\nlog_type all\nconnection_messages true\nlog_timestamp true\n")
	if os.Geteuid() == 0 {
		// As root Mosquitto would switch to the user "mosquitto", which
		// cannot read our temp dir (keys, password file).
		fmt.Fprintf(&c, "user root\n")
	}
	if o.Persist {
		fmt.Fprintf(&c, "persistence true\npersistence_location %s/\nautosave_interval 1\n", m.dir)
	} else {
		fmt.Fprintf(&c, "persistence false\n")
	}
	fmt.Fprintf(&c, "%s\n", o.Global)
	fmt.Fprintf(&c, "\nlistener %d 127.0.0.1\nallow_anonymous true\n", m.Port)
	if o.TLS != nil {
		pw := filepath.Join(m.dir, "passwd")
		passwd := tool(t, "VIGIL_MOSQUITTO_PASSWD", "mosquitto_passwd", "/usr/bin/mosquitto_passwd")
		first := true
		for u, p := range o.Users {
			args := []string{"-b", pw, u, p}
			if first {
				args = []string{"-b", "-c", pw, u, p}
				first = false
			}
			if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_passwd: %v: %s", err, out)
			}
		}
		m.TLSPort, m.CertPort = freePort(t), freePort(t)
		for _, l := range []struct {
			port     int
			needCert bool
		}{{m.TLSPort, false}, {m.CertPort, true}} {
			fmt.Fprintf(&c, "\nlistener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate %v\nallow_anonymous false\npassword_file %s\n",
				l.port, o.TLS.CA, o.TLS.ServerCert, o.TLS.ServerKey, l.needCert, pw)
		}
	}
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	if err := os.WriteFile(m.conf, []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(func() {
		m.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("mosquitto log (port %d):\n%s", m.Port, tail(m.log.String(), 4000))
		}
	})
	return m
}

// start runs Mosquitto and waits until every listener accepts.
func (m *mosquitto) start() {
	m.t.Helper()
	// A port just released can stay busy a moment; Mosquitto then exits.
	for try := 0; ; try++ {
		m.cmd = exec.Command(m.bin, "-c", m.conf)
		m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
		m.cmd.SysProcAttr = orphanKill()
		if err := m.cmd.Start(); err != nil {
			m.t.Fatalf("start mosquitto: %v", err)
		}
		m.done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(m.cmd, m.done)
		err := m.ready()
		if err == nil {
			return
		}
		m.stop(syscall.SIGKILL)
		if try == 20 {
			m.t.Fatalf("mosquitto: %v\n%s", err, tail(m.log.String(), 2000))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (m *mosquitto) ready() error {
	for _, p := range []int{m.Port, m.TLSPort, m.CertPort} {
		if p == 0 {
			continue
		}
		if err := waitPort(p, 5*time.Second); err != nil {
			return err
		}
		select {
		case <-m.done:
			return fmt.Errorf("mosquitto exited")
		default:
		}
	}
	return nil
}

// stop ends Mosquitto with sig (SIGTERM saves persistent sessions).
func (m *mosquitto) stop(sig syscall.Signal) {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
}

// pki is a throwaway CA with a server and a client certificate, and a
// second CA that signed nothing of ours.
type pki struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey, OtherCA string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{}
	caKey, caCert, caPath := makeCA(t, dir, "ca", "vigil e2e CA")
	p.CA = caPath
	_, _, p.OtherCA = makeCA(t, dir, "other-ca", "some other CA")
	p.ServerCert, p.ServerKey = leaf(t, dir, "server", caKey, caCert, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.ClientCert, p.ClientKey = leaf(t, dir, "client", caKey, caCert, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "vigil"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return p
}

var serial int64 = 1

func makeCA(t *testing.T, dir, name, cn string) (*ecdsa.PrivateKey, *x509.Certificate, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	path := filepath.Join(dir, name+".pem")
	writePEM(t, path, "CERTIFICATE", der)
	return key, cert, path
}

func leaf(t *testing.T, dir, name string, caKey *ecdsa.PrivateKey, ca *x509.Certificate, tmpl *x509.Certificate) (certPath, keyPath string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	writePEM(t, certPath, "CERTIFICATE", der)
	writePEM(t, keyPath, "PRIVATE KEY", kd)
	return certPath, keyPath
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
