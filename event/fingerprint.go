package event

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
)

// FingerprintPrefix starts every token_id that vigil derives from a raw
// credential, so a reader can tell a vigil fingerprint from an id that came
// with the event.
const FingerprintPrefix = "tk_"

// MinKeyLen is the shortest fingerprint key accepted (128 bits).
const MinKeyLen = 16

// ErrShortKey is returned for fingerprint keys shorter than MinKeyLen.
var ErrShortKey = errors.New("fingerprint key must be at least 16 bytes")

// Secret holds a raw credential between extraction and fingerprinting. Its
// String, GoString, LogValue and MarshalText all redact, so passing one to a
// logger, fmt or an encoder by mistake prints nothing of it.
type Secret []byte

func (Secret) String() string               { return "[REDACTED]" }
func (Secret) GoString() string             { return "[REDACTED]" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[REDACTED]") }
func (Secret) MarshalText() ([]byte, error) { return []byte("[REDACTED]"), nil }
func (Secret) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte("[REDACTED]")) }

// Wipe overwrites the secret's bytes with zeros.
func (s Secret) Wipe() { clear(s) }

// Fingerprinter turns raw credentials into stable token ids with a keyed
// HMAC-SHA256: hex of the first 128 bits, prefixed with FingerprintPrefix.
// The same key gives the same id across runs and replicas; without the key
// the id reveals nothing of the credential.
//
// A Fingerprinter is not safe for concurrent use: give each goroutine its
// own (Clone).
type Fingerprinter struct {
	key []byte
	mac hash.Hash
	sum [sha256.Size]byte
	out [len(FingerprintPrefix) + 32]byte
}

// NewFingerprinter returns a Fingerprinter for key (at least MinKeyLen bytes).
func NewFingerprinter(key []byte) (*Fingerprinter, error) {
	if len(key) < MinKeyLen {
		return nil, ErrShortKey
	}
	k := append([]byte(nil), key...)
	f := &Fingerprinter{key: k, mac: hmac.New(sha256.New, k)}
	copy(f.out[:], FingerprintPrefix)
	return f, nil
}

// RandomKey returns a fresh 256-bit key, for runs where fingerprints need not
// be stable across processes.
func RandomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails on supported platforms (Go 1.24+)
	return k
}

// Clone returns an independent Fingerprinter with the same key.
func (f *Fingerprinter) Clone() *Fingerprinter {
	g, _ := NewFingerprinter(f.key)
	return g
}

// AppendID appends the fingerprint of raw to dst. It does not keep raw.
func (f *Fingerprinter) AppendID(dst, raw []byte) []byte {
	f.mac.Reset()
	f.mac.Write(raw)
	s := f.mac.Sum(f.sum[:0])
	hex.Encode(f.out[len(FingerprintPrefix):], s[:16])
	return append(dst, f.out[:]...)
}

// ID returns the fingerprint of raw as a string.
func (f *Fingerprinter) ID(raw Secret) string { return string(f.AppendID(nil, raw)) }
