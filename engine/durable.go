//go:build linux

package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/vigil-sec/vigil/internal/atomicfile"

	"github.com/vigil-sec/vigil/profile"
)

// Durable records (Options.Dir). Records are pointer-free and already live
// outside the Go heap, so keeping them on disk costs nothing per event:
// record pages are mapped from a file (MAP_SHARED) instead of anonymous
// memory. A process that dies, even by kill -9, loses nothing the kernel
// has (its page cache); Sync, which the owner calls every second, flushes
// the mappings to the device (msync) for a machine that loses power, and
// writes the peer groups, which live on the Go heap, to their own file.
//
// The index cannot be stored as it is: it is keyed by a hash seeded per
// process. A durable engine keys it with xxhash seeded by a random value
// kept in the file's header instead, and keeps each record's key in a
// second file, from which a restart rebuilds the index. Token ids are
// keyed fingerprints, so nobody can aim that hash at chosen collisions.
//
// Files in Dir:
//
//	records.vgl  a 4 KiB header, then pages of 4096 records (2 MiB each)
//	keys.vgl     the index key of each record, 8 bytes each
//	clients.vgl  the peer groups: key and record, rewritten by Sync

const (
	storeMagic   = "VIGILPR1"
	storeVersion = 1
	headerSize   = 4096
	pageRecords  = 1 << pageBits
	pageBytes    = pageRecords * int(unsafe.Sizeof(Record{}))
	keyPageBytes = pageRecords * 8
)

// fileHeader is the first bytes of records.vgl.
type fileHeader struct {
	Magic       [8]byte
	Version     uint32
	RecordSize  uint32
	ProfileSize uint32
	N           uint32 // records in use
	Seed        uint64
}

type store struct {
	dir    string
	rf, kf *os.File
	head   []byte // the header page, mapped
	maps   [][]byte
	keys   [][]uint64
	seed   uint64
	digest *xxhash.Digest
}

func (s *store) header() *fileHeader { return (*fileHeader)(unsafe.Pointer(&s.head[0])) }

// openStore opens or creates the files in dir and maps the pages in use.
func openStore(dir string) (*store, [][]Record, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("engine: data directory: %w", err)
	}
	s := &store{dir: dir}
	var err error
	if s.rf, err = os.OpenFile(filepath.Join(dir, "records.vgl"), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, nil, fmt.Errorf("engine: %w", err)
	}
	if s.kf, err = os.OpenFile(filepath.Join(dir, "keys.vgl"), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		s.rf.Close()
		return nil, nil, fmt.Errorf("engine: %w", err)
	}
	pages, err := s.open()
	if err != nil {
		s.close()
		return nil, nil, err
	}
	return s, pages, nil
}

func (s *store) open() ([][]Record, error) {
	st, err := s.rf.Stat()
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	name := s.rf.Name()
	fresh := st.Size() == 0
	if fresh {
		if err := s.rf.Truncate(headerSize); err != nil {
			return nil, fmt.Errorf("engine: %s: %w", name, err)
		}
	} else if st.Size() < headerSize {
		return nil, fmt.Errorf("engine: %s: %d bytes, shorter than its header: not a vigil profile file", name, st.Size())
	}
	if s.head, err = mapShared(s.rf, 0, headerSize); err != nil {
		return nil, fmt.Errorf("engine: %s: %w", name, err)
	}
	h := s.header()
	if fresh {
		var seed [8]byte
		if _, err := io.ReadFull(rand.Reader, seed[:]); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		*h = fileHeader{Version: storeVersion, RecordSize: uint32(RecordSize), ProfileSize: uint32(profile.Size), Seed: binary.LittleEndian.Uint64(seed[:])}
		copy(h.Magic[:], storeMagic)
	}
	switch {
	case !bytes.Equal(h.Magic[:], []byte(storeMagic)):
		return nil, fmt.Errorf("engine: %s: not a vigil profile file (magic %q)", name, h.Magic[:])
	case h.Version != storeVersion:
		return nil, fmt.Errorf("engine: %s: format version %d, this vigil reads %d", name, h.Version, storeVersion)
	case h.RecordSize != uint32(RecordSize) || h.ProfileSize != uint32(profile.Size):
		return nil, fmt.Errorf("engine: %s: records of %d bytes (profile %d), this vigil's are %d (%d): written by another version",
			name, h.RecordSize, h.ProfileSize, RecordSize, profile.Size)
	}
	need := int64(h.N+pageRecords-1) / pageRecords
	if st.Size() < headerSize+need*int64(pageBytes) && !fresh {
		return nil, fmt.Errorf("engine: %s: header says %d records, the file holds fewer: truncated", name, h.N)
	}
	s.seed = h.Seed
	s.digest = xxhash.NewWithSeed(s.seed)
	pages := make([][]Record, 0, need)
	for range need {
		p, err := s.page(len(pages))
		if err != nil {
			return nil, err
		}
		pages = append(pages, p)
	}
	return pages, nil
}

// page maps page k of the records and of their keys, growing the files.
func (s *store) page(k int) ([]Record, error) {
	rend := int64(headerSize) + int64(k+1)*int64(pageBytes)
	if err := growTo(s.rf, rend); err != nil {
		return nil, err
	}
	if err := growTo(s.kf, int64(k+1)*int64(keyPageBytes)); err != nil {
		return nil, err
	}
	rb, err := mapShared(s.rf, rend-int64(pageBytes), pageBytes)
	if err != nil {
		return nil, fmt.Errorf("engine: %s: %w", s.rf.Name(), err)
	}
	kb, err := mapShared(s.kf, int64(k)*int64(keyPageBytes), keyPageBytes)
	if err != nil {
		syscall.Munmap(rb)
		return nil, fmt.Errorf("engine: %s: %w", s.kf.Name(), err)
	}
	s.maps = append(s.maps, rb, kb)
	s.keys = append(s.keys, unsafe.Slice((*uint64)(unsafe.Pointer(&kb[0])), pageRecords))
	return unsafe.Slice((*Record)(unsafe.Pointer(&rb[0])), pageRecords), nil
}

func growTo(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if st.Size() < size {
		if err := f.Truncate(size); err != nil {
			return fmt.Errorf("engine: %s: %w", f.Name(), err)
		}
	}
	return nil
}

func mapShared(f *os.File, off int64, size int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), off, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

// hash is the durable index key of a token id.
func (s *store) hash(tokenID string) uint64 {
	s.digest.ResetWithSeed(s.seed)
	s.digest.WriteString(tokenID)
	return s.digest.Sum64()
}

func (s *store) setCount(n uint32) { s.header().N = n }
func (s *store) count() uint32     { return s.header().N }

func (s *store) key(i uint32) uint64       { return s.keys[i>>pageBits][i&(pageRecords-1)] }
func (s *store) setKey(i uint32, h uint64) { s.keys[i>>pageBits][i&(pageRecords-1)] = h }

// sync flushes the mappings to the device and rewrites the peer groups.
func (s *store) sync(clients map[uint64]*Record) error {
	var errs []error
	for _, m := range append([][]byte{s.head}, s.maps...) {
		if _, _, e := syscall.Syscall(syscall.SYS_MSYNC, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), syscall.MS_SYNC); e != 0 {
			errs = append(errs, fmt.Errorf("engine: msync: %w", e))
			break
		}
	}
	var buf bytes.Buffer
	buf.WriteString(storeMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(len(clients)))
	for h, r := range clients {
		binary.Write(&buf, binary.LittleEndian, h)
		buf.Write(unsafe.Slice((*byte)(unsafe.Pointer(r)), RecordSize))
	}
	if err := atomicfile.Write(filepath.Join(s.dir, "clients.vgl"), buf.Bytes()); err != nil {
		errs = append(errs, fmt.Errorf("engine: %w", err))
	}
	return errors.Join(errs...)
}

// loadClients reads the peer groups Sync wrote; none is not an error.
func (s *store) loadClients() (map[uint64]*Record, error) {
	name := filepath.Join(s.dir, "clients.vgl")
	b, err := os.ReadFile(name)
	clients := make(map[uint64]*Record)
	if errors.Is(err, os.ErrNotExist) {
		return clients, nil
	}
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if len(b) < 12 || string(b[:8]) != storeMagic {
		return nil, fmt.Errorf("engine: %s: not a vigil peer-group file", name)
	}
	n := int(binary.LittleEndian.Uint32(b[8:12]))
	b = b[12:]
	if len(b) != n*(8+RecordSize) {
		return nil, fmt.Errorf("engine: %s: %d bytes for %d peer groups: truncated or corrupt", name, len(b), n)
	}
	for range n {
		r := new(Record)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(r)), RecordSize), b[8:8+RecordSize])
		clients[binary.LittleEndian.Uint64(b[:8])] = r
		b = b[8+RecordSize:]
	}
	return clients, nil
}

func (s *store) close() {
	for _, m := range s.maps {
		syscall.Munmap(m)
	}
	if s.head != nil {
		syscall.Munmap(s.head)
	}
	s.maps, s.keys, s.head = nil, nil, nil
	s.rf.Close()
	s.kf.Close()
}
