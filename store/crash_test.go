package store

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashEnv = "VIGIL_STORE_CRASH_DB"

// crashPart is the content of checkpoint part name at position pos: the
// parent recomputes it to check that a checkpoint's parts and position were
// saved together.
func crashPart(name string, pos uint64) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("%s@%d;", name, pos)), 1+int(pos%97))
}

// TestCrashChild is the child process of TestCrashConsistency: it appends
// and checkpoints in a loop until it is killed, printing each committed
// journal head ("A n") and checkpoint ("C n") after the call returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child process of TestCrashConsistency")
	}
	db, err := Open(Options{Path: path, Synchronous: os.Getenv(crashEnv + "_SYNC"), DedupWindow: time.Hour})
	if err != nil {
		fmt.Println("E", err)
		os.Exit(3)
	}
	db.log.segMax = 8 << 10 // segments start and go all the time
	cp, _, err := db.LoadCheckpoint()
	if err != nil {
		fmt.Println("E", err)
		os.Exit(3)
	}
	head, cpPos := db.LastPos(), cp.Pos
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), head))
	for i := 0; ; i++ {
		batch := make([]Message, 1+rng.IntN(40))
		for j := range batch {
			pos := head + uint64(j) + 1
			batch[j] = Message{Topic: "t", Payload: []byte(fmt.Sprint("m", pos)), Dedup: fmt.Sprint("d", pos), Received: time.Now()}
		}
		if _, err := db.Append(batch); err != nil {
			fmt.Println("E", err)
			os.Exit(3)
		}
		for j, m := range batch {
			if m.Pos != head+uint64(j)+1 || m.Dup {
				fmt.Println("E position", m.Pos, "want", head+uint64(j)+1)
				os.Exit(3)
			}
		}
		head += uint64(len(batch))
		fmt.Println("A", head)
		if i%3 == 2 {
			pos := cpPos + uint64(rng.IntN(int(head-cpPos)+1))
			parts := map[string][]byte{"engine": crashPart("engine", pos)}
			for k := 0; k < 20; k++ {
				if rng.IntN(2) == 0 { // some parts change, some stay, some vanish
					name := fmt.Sprint("rule/", k)
					parts[name] = crashPart(name, pos)
				}
			}
			if err := db.SaveCheckpoint(Checkpoint{Pos: pos, Version: 1, Parts: parts, Taken: time.Unix(int64(pos), 0)}); err != nil {
				fmt.Println("E", err)
				os.Exit(3)
			}
			if _, err := db.PruneJournal(); err != nil {
				fmt.Println("E", err)
				os.Exit(3)
			}
			cpPos = pos
			fmt.Println("C", pos)
		}
	}
}

// TestCrashConsistency SIGKILLs a process that appends and checkpoints at
// random moments, then checks the file: the checkpoint's parts belong to its
// position, no journal row is at or below it, positions are contiguous
// after it, and nothing the child saw committed is missing.
func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	rng := rand.New(rand.NewPCG(1, 2))
	var lastA, lastC uint64
	for round := 0; round < 10; round++ {
		mode := []string{"FULL", "NORMAL"}[round%2]
		a, c := runAndKill(t, path, mode, time.Duration(20+rng.IntN(250))*time.Millisecond)
		lastA, lastC = max(lastA, a), max(lastC, c)
		head := checkCrashFile(t, path, lastA, lastC)
		t.Logf("round %d (%s): child committed head %d checkpoint %d; file head %d", round, mode, a, c, head)
	}
	if lastA == 0 {
		t.Fatal("the child never committed anything: the test tested nothing")
	}
}

func runAndKill(t *testing.T, path, mode string, after time.Duration) (lastA, lastC uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, crashEnv+"_SYNC="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var childErr string
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			n, _ := strconv.ParseUint(f[1], 10, 64)
			switch f[0] {
			case "A":
				lastA = n
			case "C":
				lastC = n
			case "E":
				childErr = sc.Text()
			}
		}
	}()
	// Not synchronisation: the kill landing at a random moment of the
	// child's work, whatever it is doing, is what this test is about.
	time.Sleep(after)
	cmd.Process.Signal(syscall.SIGKILL)
	wg.Wait() // reads everything the child printed before it died
	cmd.Wait()
	if childErr != "" {
		t.Fatalf("child failed: %s\n%s", childErr, stderr.String())
	}
	return lastA, lastC
}

func checkCrashFile(t *testing.T, path string, committedA, committedC uint64) uint64 {
	t.Helper()
	db, err := Open(Options{Path: path})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	if moved, ok := db.Recovered(); ok {
		t.Fatalf("a kill -9 damaged the file (moved to %s)", moved)
	}
	cp, ok, err := db.LoadCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		if cp.Pos < committedC {
			t.Fatalf("checkpoint %d lost: saved %d", cp.Pos, committedC)
		}
		if want := crashPart("engine", cp.Pos); !bytes.Equal(cp.Parts["engine"], want) {
			t.Fatalf("checkpoint at %d holds engine part %.40q", cp.Pos, cp.Parts["engine"])
		}
		for name, p := range cp.Parts {
			if !bytes.Equal(p, crashPart(name, cp.Pos)) {
				t.Fatalf("checkpoint at %d: part %s from another checkpoint: %.40q", cp.Pos, name, p)
			}
		}
		if !cp.Taken.Equal(time.Unix(int64(cp.Pos), 0)) {
			t.Fatalf("checkpoint at %d taken %v", cp.Pos, cp.Taken)
		}
	} else if committedC > 0 {
		t.Fatalf("checkpoint %d lost entirely", committedC)
	}
	// Rows at or below the checkpoint may wait for pruning (oldest pruned
	// first); from the first row on, positions are contiguous, and none
	// after the checkpoint is missing.
	want := uint64(0)
	err = db.Journal(0, func(m Message) error {
		if want == 0 {
			if m.Pos > cp.Pos+1 {
				return fmt.Errorf("first journal row %d: rows after checkpoint %d missing", m.Pos, cp.Pos)
			}
			want = m.Pos
		}
		if m.Pos != want {
			return fmt.Errorf("journal row %d, want %d (checkpoint %d)", m.Pos, want, cp.Pos)
		}
		if string(m.Payload) != fmt.Sprint("m", m.Pos) || m.Dedup != fmt.Sprint("d", m.Pos) {
			return fmt.Errorf("journal row %d holds %q/%q", m.Pos, m.Payload, m.Dedup)
		}
		want++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	head := cp.Pos
	if want > 0 {
		head = max(want-1, cp.Pos)
	}
	if head < committedA {
		t.Fatalf("journal head %d, but the child had committed up to %d", head, committedA)
	}
	if db.LastPos() != head {
		t.Fatalf("LastPos %d, journal head %d", db.LastPos(), head)
	}
	if n, err := db.JournalLen(); err != nil || db.Stats().JournalRows != n {
		t.Fatalf("Stats().JournalRows %d, JournalLen %d (%v)", db.Stats().JournalRows, n, err)
	}
	return head
}
