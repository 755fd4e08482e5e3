//go:build !linux

package engine

import "errors"

// store is not available here: Options.Dir needs Linux (mmap'd files).
type store struct{}

func openStore(string) (*store, [][]Record, error) {
	return nil, nil, errors.New("engine: a data directory (durable profiles) needs Linux")
}
func (*store) hash(string) uint64                       { return 0 }
func (*store) key(uint32) uint64                        { return 0 }
func (*store) setKey(uint32, uint64)                    {}
func (*store) page(int) ([]Record, error)               { return nil, errors.New("engine: no store") }
func (*store) sync(map[uint64]*Record) error            { return nil }
func (*store) loadClients() (map[uint64]*Record, error) { return nil, nil }
func (*store) close()                                   {}
func (*store) setCount(uint32)                          {}
func (*store) count() uint32                            { return 0 }
