package zone

import (
	"net/netip"
	"strconv"
	"strings"
)

// Request is what Check needs of a request: who makes it and from where.
type Request struct {
	TokenID, ClientID string
	Addr              netip.Addr
	// ASN and Country come from GeoIP; 0 and "" when unknown.
	ASN     uint32
	Country string
}

// Violation is the rule a request breaks.
type Violation struct {
	// Rule is the name of the deny rule the request matches or, for a
	// request outside the zone of an allow-list, the names of every allow
	// rule of the deciding scope, joined by ", ".
	Rule    string
	Scope   Scope
	Subject string
	Effect  Effect
	// Action is the deny rule's, or the strongest of the allow rules'.
	Action Action
}

// Check reports the rule r breaks, if any; see the package documentation
// for the semantics. It allocates nothing. A nil Set checks nothing.
func (s *Set) Check(r *Request) (Violation, bool) {
	if s == nil {
		return Violation{}, false
	}
	q := query{addr: r.Addr.Unmap().WithZone(""), asn: r.ASN, country: pack(r.Country)}
	global := &s.buckets[0]
	var client, cred *bucket
	if r.ClientID != "" {
		if i, ok := s.clients[r.ClientID]; ok {
			client = &s.buckets[i]
		}
	}
	if r.TokenID != "" {
		if i, ok := s.creds[r.TokenID]; ok {
			cred = &s.buckets[i]
		}
	}

	// Deny rules of every scope apply; the strongest action wins, then
	// the rule configured first.
	best := int32(-1)
	for _, b := range [...]*bucket{global, client, cred} {
		if b == nil {
			continue
		}
		for _, i := range b.deny {
			if best >= 0 && !s.stronger(i, best) {
				continue
			}
			if s.rules[i].match(&q) {
				best = i
			}
		}
	}
	if best >= 0 && s.rules[best].action == Block {
		return s.rules[best].violation(), true
	}

	// The most specific scope with allow rules decides.
	decider := global
	for _, b := range [...]*bucket{cred, client} {
		if b != nil && len(b.allow) > 0 {
			decider = b
			break
		}
	}
	if len(decider.allow) > 0 && (best < 0 || decider.allowAction > s.rules[best].action) {
		inside := false
		for _, i := range decider.allow {
			if s.rules[i].match(&q) {
				inside = true
				break
			}
		}
		if !inside {
			return Violation{
				Rule:    decider.allowNames,
				Scope:   decider.scope,
				Subject: decider.subject,
				Effect:  Allow,
				Action:  decider.allowAction,
			}, true
		}
	}
	if best >= 0 {
		return s.rules[best].violation(), true
	}
	return Violation{}, false
}

// stronger reports whether rule i would be reported before rule j.
func (s *Set) stronger(i, j int32) bool {
	ai, aj := s.rules[i].action, s.rules[j].action
	return ai > aj || ai == aj && i < j
}

// query is a Request as rules compare it.
type query struct {
	addr    netip.Addr // unmapped, no zone
	asn     uint32
	country uint16
}

func (r *rule) match(q *query) bool {
	if q.asn != 0 && len(r.asns) > 0 && hasASN(r.asns, q.asn) {
		return true
	}
	if q.country != 0 {
		for _, c := range r.countries {
			if c == q.country {
				return true
			}
		}
	}
	return q.addr.IsValid() && len(r.prefixes) > 0 && hasAddr(r.prefixes, q.addr)
}

func hasASN(asns []uint32, n uint32) bool {
	lo, hi := 0, len(asns)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case asns[m] == n:
			return true
		case asns[m] < n:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}

// hasAddr reports whether a is in one of the sorted, disjoint prefixes.
func hasAddr(ps []netip.Prefix, a netip.Addr) bool {
	if len(ps) <= 8 {
		for _, p := range ps {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	// The last prefix starting at or before a is the only one it can be in.
	lo, hi := 0, len(ps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ps[m].Addr().Compare(a) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && ps[lo-1].Contains(a)
}

func (r *rule) violation() Violation {
	return Violation{Rule: r.name, Scope: r.scope, Subject: r.subject, Effect: r.effect, Action: r.action}
}

// AppendDetail appends to dst a sentence that explains v for the
// decision's reason, e.g.
//
//	request from 203.0.113.7 (AS14061, DE) outside zone "chatsync-aws" of client chatsync
//	request from 198.51.100.4 (AS60729, country unknown) matches deny rule "tor-exits" (global)
//
// It names the credential by its token id only.
func (v Violation) AppendDetail(dst []byte, r *Request) []byte {
	dst = append(dst, "request from "...)
	if r.Addr.IsValid() {
		dst = r.Addr.AppendTo(dst)
	} else {
		dst = append(dst, "unknown address"...)
	}
	dst = append(dst, " ("...)
	if r.ASN != 0 {
		dst = append(dst, "AS"...)
		dst = strconv.AppendUint(dst, uint64(r.ASN), 10)
	} else {
		dst = append(dst, "AS unknown"...)
	}
	dst = append(dst, ", "...)
	if r.Country != "" {
		dst = append(dst, r.Country...)
	} else {
		dst = append(dst, "country unknown"...)
	}
	dst = append(dst, ") "...)
	if v.Effect == Deny {
		dst = append(dst, "matches deny rule \""...)
		dst = append(dst, v.Rule...)
		dst = append(dst, '"')
	} else {
		dst = append(dst, "outside zone"...)
		if strings.Contains(v.Rule, ", ") {
			dst = append(dst, 's')
		}
		sep := " \""
		for name := range strings.SplitSeq(v.Rule, ", ") {
			dst = append(dst, sep...)
			dst = append(dst, name...)
			dst = append(dst, '"')
			sep = ", \""
		}
	}
	if v.Scope == Global || v.Subject == "" {
		return append(dst, " (global)"...)
	}
	dst = append(dst, " of "...)
	dst = append(dst, v.Scope.String()...)
	dst = append(dst, ' ')
	return append(dst, v.Subject...)
}
