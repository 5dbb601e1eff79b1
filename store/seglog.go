package store

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// The input journal is an append-only log of segment files beside the
// database (PATH-log/<first position>.seg), not a SQLite table. A message is
// written once, as it arrived, in one write(2) per commit; a segment that a
// checkpoint covers is deleted whole. SQLite wrote each message about four
// times over (the WAL frame of a whole page on every commit, the copy into
// the database file, and again as rows were deleted): ~600 bytes a 70-byte
// reading where the log writes ~110 (issue #17, BENCHMARKS.md).
//
// A record: length (uint32, little endian) and CRC-32C of the body, then
// the body: position (uvarint), receive time (varint, Unix ns), topic and
// dedup id (each uvarint length + bytes), payload (the rest). A torn write
// at the end of the last segment (a crash mid-append) fails its checksum and
// is cut off when the log is opened; nothing after a bad record is read.

const (
	// segMax is the size at which a new segment starts: deletion is by
	// segment, so this is what a covered journal keeps on disk at most,
	// beside the dedup window.
	segMax = 4 << 20
	// recHead is a record's header: body length and checksum.
	recHead = 8
	// maxRecord bounds a body when reading (a damaged length must not
	// allocate gigabytes).
	maxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errJournalFull is returned (wrapped in ErrDiskFull) when an append would
// take the log past its limit (Options.JournalMax).
var errJournalFull = errors.New("journal at its size limit")

// segment is one file of the log.
type segment struct {
	path        string
	first, last uint64 // positions; last == first-1 while empty
	newest      int64  // newest receive time in it (Unix ns)
	size        int64
}

// jlog is the journal's log. Its methods are called with DB.wmu held.
type jlog struct {
	dir    string
	limit  int64 // bytes in all segments at most
	segMax int64 // segMax, but for tests
	segs   []segment
	cur    *os.File // the last segment, open for appending
	total  int64
	syncs  uint64 // fsyncs of segment files
	buf    []byte // a commit's encoded records, reused
}

func segName(first uint64) string { return fmt.Sprintf("%020d.seg", first) }

// openLog opens (creating) the log in dir, cutting a torn tail.
func openLog(dir string, limit int64) (*jlog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	l := &jlog{dir: dir, limit: limit, segMax: segMax}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok || e.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(name, 10, 64)
		if err != nil || first == 0 {
			continue
		}
		l.segs = append(l.segs, segment{path: filepath.Join(dir, e.Name()), first: first, last: first - 1})
	}
	slices.SortFunc(l.segs, func(a, b segment) int { return cmp.Compare(a.first, b.first) })
	for i := range l.segs {
		s := &l.segs[i]
		valid, err := scanSegment(s, -1, nil)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(s.path); err == nil && fi.Size() > valid {
			// A torn or damaged tail: cut it, so appends follow the
			// last good record.
			if err := os.Truncate(s.path, valid); err != nil {
				return nil, fmt.Errorf("journal: cut damaged tail of %s: %w", s.path, err)
			}
		}
		s.size = valid
		l.total += valid
	}
	// A segment that follows a gap (its predecessor lost its tail) would
	// reuse positions: positions continue after the last segment only.
	if n := len(l.segs); n > 0 {
		f, err := os.OpenFile(l.segs[n-1].path, os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		l.cur = f
	}
	return l, nil
}

// last is the position of the last record, 0 when the log is empty.
func (l *jlog) last() uint64 {
	for i := len(l.segs) - 1; i >= 0; i-- {
		if l.segs[i].last >= l.segs[i].first {
			return l.segs[i].last
		}
	}
	return 0
}

// scanSegment reads s's records (its first size bytes; size < 0: all),
// setting last and newest, calling fn (if set) for each; it returns the
// size of the valid prefix.
func scanSegment(s *segment, size int64, fn func(Message) error) (int64, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	var in io.Reader = f
	if size >= 0 {
		in = io.LimitReader(f, size)
	}
	r := bufio.NewReaderSize(in, 64<<10)
	var off int64
	var head [recHead]byte
	var body []byte
	s.last = s.first - 1
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return off, nil // end, or a torn header
		}
		n := binary.LittleEndian.Uint32(head[:4])
		if n == 0 || n > maxRecord {
			return off, nil
		}
		body = slices.Grow(body[:0], int(n))[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return off, nil
		}
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(head[4:]) {
			return off, nil
		}
		m, ok := decodeRecord(body)
		if !ok || m.Pos != s.last+1 {
			return off, nil
		}
		s.last = m.Pos
		s.newest = max(s.newest, recv(&m))
		off += recHead + int64(n)
		if fn != nil {
			m.Payload = append([]byte{}, m.Payload...)
			if err := fn(m); err != nil {
				return off, err
			}
		}
	}
}

func recv(m *Message) int64 { return nanos(m.Received) }

// decodeRecord parses a body; its payload aliases body.
func decodeRecord(b []byte) (Message, bool) {
	var m Message
	pos, n := binary.Uvarint(b)
	if n <= 0 {
		return m, false
	}
	b = b[n:]
	ns, n := binary.Varint(b)
	if n <= 0 {
		return m, false
	}
	b = b[n:]
	var topic, dedup []byte
	for _, dst := range []*[]byte{&topic, &dedup} {
		k, n := binary.Uvarint(b)
		if n <= 0 || k > uint64(len(b)-n) {
			return m, false
		}
		*dst = b[n : n+int(k)]
		b = b[n+int(k):]
	}
	m.Pos, m.Received = pos, fromNanos(ns)
	m.Topic, m.Dedup, m.Payload = string(topic), string(dedup), b
	return m, true
}

// appendRecords writes msgs (positions set, contiguous after last()) in one
// write, synced if sync. On error nothing of it stays in the log.
func (l *jlog) appendRecords(msgs []Message, sync bool) error {
	b := l.buf[:0]
	for i := range msgs {
		m := &msgs[i]
		start := len(b)
		b = append(b, make([]byte, recHead)...)
		b = binary.AppendUvarint(b, m.Pos)
		b = binary.AppendVarint(b, nanos(m.Received))
		b = binary.AppendUvarint(b, uint64(len(m.Topic)))
		b = append(b, m.Topic...)
		b = binary.AppendUvarint(b, uint64(len(m.Dedup)))
		b = append(b, m.Dedup...)
		b = append(b, m.Payload...)
		body := b[start+recHead:]
		binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
		binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	}
	if cap(b) <= 1<<20 {
		l.buf = b[:0]
	} else {
		l.buf = nil // a rare huge batch is not kept
	}
	if l.total+int64(len(b)) > l.limit {
		return fmt.Errorf("%w: %w (%d bytes, limit %d: checkpoints are failing or the engine is behind)", ErrDiskFull, errJournalFull, l.total, l.limit)
	}
	// A new segment when there is none, when the positions do not follow
	// the last record (the last segment lost its tail to a power cut after
	// a checkpoint had covered it), or when the last is full.
	if n := len(l.segs); l.cur == nil || msgs[0].Pos != l.segs[n-1].last+1 ||
		(l.segs[n-1].size > 0 && l.segs[n-1].size+int64(len(b)) > l.segMax) {
		if err := l.rotate(msgs[0].Pos); err != nil {
			return err
		}
	}
	s := &l.segs[len(l.segs)-1]
	if _, err := l.cur.WriteAt(b, s.size); err != nil {
		l.cur.Truncate(s.size)
		return logErr("append journal", err)
	}
	if sync {
		l.syncs++
		if err := l.cur.Sync(); err != nil {
			l.cur.Truncate(s.size)
			return logErr("sync journal", err)
		}
	}
	s.size += int64(len(b))
	l.total += int64(len(b))
	s.last = msgs[len(msgs)-1].Pos
	for i := range msgs {
		s.newest = max(s.newest, recv(&msgs[i]))
	}
	return nil
}

// rotate starts a segment whose first record is first. The finished one
// is synced (what it holds unsynced, QoS 0 messages, is durable from now),
// and the directory too, so the new file survives a power cut.
func (l *jlog) rotate(first uint64) error {
	if l.cur != nil {
		l.syncs++
		if err := l.cur.Sync(); err != nil {
			return logErr("sync journal", err)
		}
		l.cur.Close()
		l.cur = nil
	}
	if n := len(l.segs); n > 0 && l.segs[n-1].size == 0 {
		// An empty segment (its appends all failed) is replaced.
		os.Remove(l.segs[n-1].path)
		l.segs = l.segs[:n-1]
	}
	path := filepath.Join(l.dir, segName(first))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return logErr("create journal segment", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		os.Remove(path)
		return logErr("sync journal directory", err)
	}
	l.cur = f
	l.segs = append(l.segs, segment{path: path, first: first, last: first - 1})
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// logErr marks a full disk (ENOSPC, EDQUOT) and I/O errors as ErrDiskFull.
func logErr(op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EIO) {
		return fmt.Errorf("%s: %w: %w", op, ErrDiskFull, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// read calls fn for each record with Pos > after in segs (a copy of
// l.segs taken with DB.wmu held: read runs without it, so fn may append),
// in order. A segment deleted meanwhile was covered by a checkpoint.
func read(segs []segment, after uint64, fn func(Message) error) error {
	for _, s := range segs {
		if s.last <= after {
			continue
		}
		if _, err := os.Stat(s.path); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if _, err := scanSegment(&s, s.size, func(m Message) error {
			if m.Pos <= after {
				return nil
			}
			return fn(m)
		}); err != nil {
			return err
		}
	}
	return nil
}

// originals finds, among the records in the log that keep accepts, the
// latest position of each id in ids.
func (l *jlog) originals(ids map[string]struct{}, keep func(*Message) bool, found map[string]uint64) error {
	for _, s := range l.segs {
		if _, err := scanSegment(&s, s.size, func(m Message) error {
			if _, ok := ids[m.Dedup]; ok && m.Dedup != "" && keep(&m) {
				found[m.Dedup] = max(found[m.Dedup], m.Pos)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// prune deletes the segments whose records are all at or below covered
// and (keepSince != 0) all received before keepSince (Unix ns), oldest
// first. Keeping segments for redeliveries within keepSince is best
// effort: past a quarter of the limit (at 50,000 msg/s two minutes are
// 600 MB), covered segments go whatever their age. The last one goes too
// once it is full or (a journal at its limit) the rest are gone: the next
// append starts a segment. It returns how many records it deleted.
func (l *jlog) prune(covered uint64, keepSince int64) (int, error) {
	n := 0
	for len(l.segs) > 0 {
		s := l.segs[0]
		if s.last > covered || (keepSince != 0 && s.newest >= keepSince && l.total <= l.limit/4) {
			break
		}
		if len(l.segs) == 1 {
			if s.size < l.segMax && l.total < l.limit/2 {
				break // appends go on into it
			}
			l.cur.Close()
			l.cur = nil
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, logErr("delete journal segment", err)
		}
		l.total -= s.size
		n += int(s.last + 1 - s.first)
		l.segs = l.segs[1:]
	}
	return n, nil
}

func (l *jlog) close() error {
	if l.cur == nil {
		return nil
	}
	err := l.cur.Sync()
	if cerr := l.cur.Close(); err == nil {
		err = cerr
	}
	l.cur = nil
	return err
}
