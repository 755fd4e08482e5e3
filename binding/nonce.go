package binding

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Server nonces (RFC 9449 §8) without shared state: a nonce is
// base64url(counter || HMAC-SHA256(key, label || counter)[:16]), where the
// counter numbers the periods since the Unix epoch. A nonce is valid in its
// own period and the next, so a client's nonce lasts between one and two
// periods; every replica with the same key and a roughly synchronised
// clock issues and accepts the same nonces. Near a period's end, a replica
// whose clock runs ahead may issue a nonce one that lags does not accept
// yet: the client is told that replica's current nonce and retries.

// MinNonceKey is the shortest HMAC key NewHMACNonces accepts.
const MinNonceKey = 16

// ErrShortNonceKey is returned for a key shorter than MinNonceKey.
var ErrShortNonceKey = fmt.Errorf("binding: the nonce key must be at least %d bytes", MinNonceKey)

// DefaultNoncePeriod is NonceOptions.Period when it is 0.
const DefaultNoncePeriod = 5 * time.Minute

const (
	nonceLabel  = "vigil dpop nonce v1\x00"
	nonceMACLen = 16
	nonceLen    = 8 + nonceMACLen
)

// nonceStrLen is the length of a nonce as sent.
var nonceStrLen = base64.RawURLEncoding.EncodedLen(nonceLen)

// NonceOptions configure HMACNonces.
type NonceOptions struct {
	// Key is the HMAC key shared by every replica, at least MinNonceKey
	// bytes; it is copied.
	Key []byte
	// Period is how long one nonce is current; 0 means
	// DefaultNoncePeriod. At least one second.
	Period time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// HMACNonces issues and checks stateless server nonces. It is safe for
// concurrent use; printing or logging it never shows the key.
type HMACNonces struct {
	// mac computes a counter's tag; the key lives only in its closure, so
	// that no field holds it.
	mac    func(counter uint64) []byte
	period time.Duration
	now    func() time.Time
	// window caches the nonces of the current period and the one before.
	window atomic.Pointer[nonceWindow]
}

type nonceWindow struct {
	counter   uint64
	cur, prev string
}

// Interface guards.
var (
	_ Nonces         = (*HMACNonces)(nil)
	_ slog.LogValuer = (*HMACNonces)(nil)
	_ fmt.Stringer   = (*HMACNonces)(nil)
)

// NewHMACNonces returns HMACNonces.
func NewHMACNonces(o NonceOptions) (*HMACNonces, error) {
	if len(o.Key) < MinNonceKey {
		return nil, ErrShortNonceKey
	}
	if o.Period == 0 {
		o.Period = DefaultNoncePeriod
	}
	if o.Period < time.Second {
		return nil, errors.New("binding: the nonce period must be at least 1s")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	key := append([]byte(nil), o.Key...)
	mac := func(counter uint64) []byte {
		m := hmac.New(sha256.New, key)
		var b [len(nonceLabel) + 8]byte
		copy(b[:], nonceLabel)
		binary.BigEndian.PutUint64(b[len(nonceLabel):], counter)
		m.Write(b[:])
		return m.Sum(nil)[:nonceMACLen]
	}
	return &HMACNonces{mac: mac, period: o.Period, now: o.Now}, nil
}

// Current returns the nonce of the current period.
func (n *HMACNonces) Current() string { return n.current().cur }

// Valid reports whether nonce is the current period's or the previous
// one's. The comparison takes the same time wherever the nonces differ.
func (n *HMACNonces) Valid(nonce string) bool {
	if len(nonce) != nonceStrLen {
		return false
	}
	w := n.current()
	return subtle.ConstantTimeCompare([]byte(nonce), []byte(w.cur))|
		subtle.ConstantTimeCompare([]byte(nonce), []byte(w.prev)) == 1
}

// current returns the nonces of the current period, computing them once
// per period (concurrent callers may both compute them; they agree).
func (n *HMACNonces) current() *nonceWindow {
	t := n.now().UnixNano()
	if t < 0 {
		t = 0
	}
	c := uint64(t / int64(n.period))
	if w := n.window.Load(); w != nil && w.counter == c {
		return w
	}
	w := &nonceWindow{counter: c, cur: n.nonce(c), prev: n.nonce(c - 1)}
	// Cache it unless another goroutine has cached a later period.
	for old := n.window.Load(); old == nil || old.counter < c; old = n.window.Load() {
		if n.window.CompareAndSwap(old, w) {
			break
		}
	}
	return w
}

func (n *HMACNonces) nonce(counter uint64) string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:8], counter)
	copy(b[8:], n.mac(counter))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// String describes n without its key.
func (n *HMACNonces) String() string {
	return "binding.HMACNonces{key: [redacted], period: " + n.period.String() + "}"
}

// GoString describes n without its key (fmt's %#v).
func (n *HMACNonces) GoString() string { return n.String() }

// LogValue describes n without its key.
func (n *HMACNonces) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key", "[redacted]"), slog.Duration("period", n.period))
}
