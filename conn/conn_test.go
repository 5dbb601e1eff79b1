package conn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"+/b", "a/b", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"$share/g/a/+", "a/b", true},
		{"$share/g/a/+", "b/b", false},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
	} {
		t.Run(tc.filter+"~"+tc.topic, func(t *testing.T) {
			if got := match(tc.filter, tc.topic); got != tc.want {
				t.Fatalf("match(%q, %q) = %v", tc.filter, tc.topic, got)
			}
		})
	}
}

func TestValidFilter(t *testing.T) {
	for _, tc := range []struct {
		f  string
		ok bool
	}{
		{"a/b", true}, {"a/#", true}, {"#", true}, {"+/+", true},
		{"", false}, {"a/#/b", false}, {"a#", false}, {"a/b+", false},
	} {
		t.Run(tc.f, func(t *testing.T) {
			if err := validFilter(tc.f); (err == nil) != tc.ok {
				t.Fatalf("validFilter(%q) = %v", tc.f, err)
			}
		})
	}
	if _, err := NewSubscriber(Options{Logger: quiet}, []string{"ok/#", "bad/#/x"}, 0); err == nil || !strings.Contains(err.Error(), "bad/#/x") {
		t.Fatalf("NewSubscriber with a bad filter: %v", err)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		broker, wantErr string
	}{
		{"", ""},
		{"tcp://h:1883", ""},
		{"tls://h:8883", ""},
		{"ws://h:80/mqtt", ""},
		{"http://h:80", "scheme"},
		{"h:1883", "scheme"},
		{"tcp://", "no host"},
	} {
		t.Run(tc.broker, func(t *testing.T) {
			o := Options{Broker: tc.broker}
			err := o.fill("-x")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(o.ClientID, "vigil-") || !strings.HasSuffix(o.ClientID, "-x") || o.ReconnectMax != time.Minute {
					t.Fatalf("defaults not filled: %+v", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	l := &link{o: Options{ReconnectMin: time.Second, ReconnectMax: 5 * time.Second}}
	var got []time.Duration
	var d time.Duration
	for range 5 {
		d = l.backoff(d)
		got = append(got, d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("backoff %v, want %v", got, want)
	}
	for range 100 {
		if j := jitter(time.Second); j < 800*time.Millisecond || j > 1200*time.Millisecond {
			t.Fatalf("jitter %v outside ±20%%", j)
		}
	}
}

func TestPublishNotConnected(t *testing.T) {
	p, err := NewPublisher(Options{Broker: "tcp://127.0.0.1:1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), "a", []byte("x"), 1); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish before Run: %v, want ErrNotConnected", err)
	}
	if p.Connected() {
		t.Fatal("Connected before Run")
	}
}
