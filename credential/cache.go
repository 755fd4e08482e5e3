package credential

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// Size of the verification cache: cacheShards × cacheSlots entries of about
// 200 bytes (the digest, the claims, two times), 820 kB in all.
const (
	cacheShards = 16
	cacheSlots  = 256
)

// verifiedCache remembers the JWTs a verifier verified, by the SHA-256 of
// the token (never the token), with their claims. It is direct-mapped: a
// token's digest picks one slot, and a newer token taking the slot evicts
// the older one, so it never grows and needs no eviction policy.
//
// A hit counts only while the JWKS is the one the token was verified with
// (a reload, and so a withdrawn key, empties it in effect) and while the
// token is inside its nbf and exp without any leeway; near its ends a token
// goes through jwx again, which applies the leeway and says why it fails.
// Issuer and audience are fixed for a verifier, so they hold for a hit.
type verifiedCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	slots [cacheSlots]cacheEntry
}

type cacheEntry struct {
	digest    [sha256.Size]byte
	set       *keySet // nil for an empty slot
	notBefore time.Time
	claims    Claims
}

func (vc *verifiedCache) slot(d *[sha256.Size]byte) (*cacheShard, *cacheEntry) {
	sh := &vc.shards[d[0]%cacheShards]
	return sh, &sh.slots[binary.LittleEndian.Uint16(d[1:3])%cacheSlots]
}

// get copies into c the claims of the token with digest d, verified
// against set, if they are cached and the token is valid at now.
func (vc *verifiedCache) get(d *[sha256.Size]byte, set *keySet, now time.Time, c *Claims) bool {
	sh, e := vc.slot(d)
	sh.mu.Lock()
	hit := e.set == set && e.digest == *d
	if hit {
		*c = e.claims
		hit = (c.Expiry.IsZero() || now.Before(c.Expiry)) && !now.Before(e.notBefore)
	}
	sh.mu.Unlock()
	if !hit {
		*c = Claims{}
	}
	return hit
}

// put remembers the claims c of the token with digest d, verified against
// set.
func (vc *verifiedCache) put(d *[sha256.Size]byte, set *keySet, notBefore time.Time, c *Claims) {
	sh, e := vc.slot(d)
	sh.mu.Lock()
	*e = cacheEntry{digest: *d, set: set, notBefore: notBefore, claims: *c}
	sh.mu.Unlock()
}
