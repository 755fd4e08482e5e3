package server

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/store"
)

// maxDenyBody bounds one PUT to the denylist.
const maxDenyBody = 4 << 10

// denyRequest is the body of PUT /v1/denylist/{token_id}. Until is parsed
// here, not by encoding/json, so that an error names the field.
type denyRequest struct {
	Reason string  `json:"reason"`
	Until  *string `json:"until"`
	By     string  `json:"by"`
}

// denials answers GET /v1/denylist: the denylist, as a JSON array ordered
// by token id.
func (s *Server) denials(w http.ResponseWriter, r *http.Request) {
	ds, err := s.Checker.Store().Denials(r.Context(), 0)
	if err != nil {
		s.log.Warn("denylist: state store", "err", err)
		problem(w, http.StatusServiceUnavailable, "state store unavailable: the denylist could not be read")
		return
	}
	if ds == nil {
		ds = []store.Denial{}
	}
	slices.SortFunc(ds, func(a, b store.Denial) int { return cmp.Compare(a.TokenID, b.TokenID) })
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(ds)
}

// deny answers PUT /v1/denylist/{token_id}: 204 once the credential is on
// the denylist (replacing an entry it had), 400 with a problem naming the
// field when the request is wrong.
func (s *Server) deny(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("token_id")
	if err := checkTokenID(id); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := readDenial(w, r, time.Now())
	if err != nil {
		status := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			status = http.StatusRequestEntityTooLarge
		}
		problem(w, status, err.Error())
		return
	}
	d.TokenID = id
	if err := s.Checker.Store().Deny(r.Context(), d); err != nil {
		s.log.Warn("denylist: state store", "err", err)
		problem(w, http.StatusServiceUnavailable, "state store unavailable: the credential was not denylisted")
		return
	}
	s.log.Info("credential denylisted", "token_id", id, "reason", d.Reason, "by", d.By, "until", d.Until, "peer", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

// undeny answers DELETE /v1/denylist/{token_id}: 204 when the credential
// was on the denylist, 404 when it was not.
func (s *Server) undeny(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("token_id")
	if err := checkTokenID(id); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	ok, err := s.Checker.Store().Undeny(r.Context(), id)
	if err != nil {
		s.log.Warn("denylist: state store", "err", err)
		problem(w, http.StatusServiceUnavailable, "state store unavailable: the credential was not taken off the denylist")
		return
	}
	if !ok {
		problem(w, http.StatusNotFound, "token_id: not on the denylist")
		return
	}
	s.log.Info("credential taken off the denylist", "token_id", id, "peer", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

// readDenial reads and checks a PUT's body. Its errors name the field and
// never repeat the values sent (a confused operator may paste a secret).
func readDenial(w http.ResponseWriter, r *http.Request, now time.Time) (store.Denial, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDenyBody))
	if err != nil {
		if mb, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return store.Denial{}, fmt.Errorf("body: larger than %d bytes: %w", mb.Limit, err)
		}
		return store.Denial{}, fmt.Errorf("body: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return store.Denial{}, errors.New(`body: empty; want {"reason": "...", "until": "RFC 3339 time" (optional), "by": "..." (optional)}`)
	}
	var req denyRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return store.Denial{}, fmt.Errorf("%s: want a %s, got a JSON %s", te.Field, te.Type, te.Value)
		}
		return store.Denial{}, fmt.Errorf("body: %w", err)
	}
	if dec.More() {
		return store.Denial{}, errors.New("body: more than one JSON value")
	}
	d := store.Denial{Reason: strings.TrimSpace(req.Reason), By: strings.TrimSpace(req.By)}
	if err := checkText("reason", d.Reason, true); err != nil {
		return store.Denial{}, err
	}
	if err := checkText("by", d.By, false); err != nil {
		return store.Denial{}, err
	}
	if req.Until != nil {
		u, err := time.Parse(time.RFC3339, *req.Until)
		if err != nil {
			return store.Denial{}, errors.New(`until: not an RFC 3339 time such as "2026-12-01T00:00:00Z"`)
		}
		if !u.After(now) {
			return store.Denial{}, fmt.Errorf("until: %s is not in the future", u.UTC().Format(time.RFC3339))
		}
		d.Until = u.UTC()
	}
	return d, nil
}

// checkText checks a free-text field of a denial.
func checkText(field, s string, required bool) error {
	switch {
	case s == "" && required:
		return fmt.Errorf("%s: missing: say why the credential is denied", field)
	case len(s) > store.MaxReason:
		return fmt.Errorf("%s: %d bytes, at most %d", field, len(s), store.MaxReason)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s: not valid UTF-8", field)
	case strings.ContainsFunc(s, unicode.IsControl):
		return fmt.Errorf("%s: contains control characters", field)
	}
	return nil
}

// checkTokenID accepts the keys the inline Checker judges requests under:
// a credential's fingerprint (tk_ and 32 hex digits, as X-Vigil-Token-Id,
// decision logs and the read API show it) or, for requests without a
// credential, ip: and an IPv4 address or an IPv6 /64. It never repeats
// what it refuses: that may be the raw credential itself.
func checkTokenID(id string) error {
	if hex, ok := strings.CutPrefix(id, event.FingerprintPrefix); ok {
		if len(hex) == 32 && strings.Trim(hex, "0123456789abcdef") == "" {
			return nil
		}
	} else if a, ok := strings.CutPrefix(id, "ip:"); ok {
		if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() && ip.String() == a {
			return nil
		}
		if p, err := netip.ParsePrefix(a); err == nil && p.Addr().Is6() && p.Bits() == 64 && p.Masked() == p && p.String() == a {
			return nil
		}
		return errors.New("token_id: an ip: key is ip:<IPv4 address> or ip:<IPv6 /64 prefix>, as the read API shows it (e.g. ip:198.51.100.7, ip:2001:db8:1:2::/64)")
	}
	return errors.New("token_id: not a vigil token id: want tk_ and 32 hex digits, as X-Vigil-Token-Id, decision logs and the read API show it (never the raw credential)")
}

// problem answers an RFC 9457 problem with detail.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{"about:blank", http.StatusText(status), status, detail})
}
