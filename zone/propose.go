package zone

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Observed is the traffic of one subject from one network: an aggregate
// of requests sharing scope, subject, AS number and country (and address,
// when the source keeps it).
type Observed struct {
	// Scope is Client or Credential; other observations are ignored.
	Scope   Scope
	Subject string
	// Addr is optional; it is used only when ASN and Country are unknown.
	Addr     netip.Addr
	ASN      uint32
	Country  string
	Requests uint64
}

// ProposeOptions tune Propose. The zero value means the defaults.
type ProposeOptions struct {
	// MinShare is the share of a subject's requests a network must carry
	// to be listed; 0 means 0.01.
	MinShare float64
	// MinRequests is how many requests a subject needs for a proposal;
	// 0 means 20.
	MinRequests uint64
	// Action of the proposed rules; 0 means StepUp.
	Action Action
}

func (o *ProposeOptions) defaults() {
	if o.MinShare <= 0 {
		o.MinShare = 0.01
	}
	if o.MinRequests == 0 {
		o.MinRequests = 20
	}
	if o.Action == 0 {
		o.Action = StepUp
	}
}

// Propose learns zones from observed traffic: for each client and
// credential with at least MinRequests requests, one allow rule named
// "learned-<scope>-<subject>" that lists the networks carrying at least
// MinShare of them. A network is its AS number; traffic of unknown AS is
// listed by country; traffic with neither (private addresses, no GeoIP
// data) by the /24 (IPv4) or /64 (IPv6) of its address. Each rule's
// Comment holds the evidence. Rules come clients first, then credentials,
// each by subject; lists are sorted.
func Propose(obs []Observed, o ProposeOptions) []Rule {
	o.defaults()
	type key struct {
		scope   Scope
		subject string
	}
	type network struct {
		asn     uint32
		country string
		prefix  netip.Prefix
	}
	traffic := map[key]map[network]uint64{}
	for _, ob := range obs {
		if (ob.Scope != Client && ob.Scope != Credential) || ob.Subject == "" || ob.Requests == 0 {
			continue
		}
		var n network
		switch {
		case ob.ASN != 0:
			n.asn = ob.ASN
		case pack(ob.Country) != 0:
			n.country = strings.ToUpper(ob.Country)
		case ob.Addr.IsValid():
			a := ob.Addr.Unmap().WithZone("")
			bits := 64
			if a.Is4() {
				bits = 24
			}
			n.prefix, _ = a.Prefix(bits)
		}
		k := key{ob.Scope, ob.Subject}
		if traffic[k] == nil {
			traffic[k] = map[network]uint64{}
		}
		traffic[k][n] += ob.Requests // n is zero for traffic from nowhere known
	}

	keys := make([]key, 0, len(traffic))
	for k := range traffic {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.scope, b.scope), strings.Compare(a.subject, b.subject))
	})

	var rules []Rule
	for _, k := range keys {
		var total uint64
		for _, n := range traffic[k] {
			total += n
		}
		if total < o.MinRequests {
			continue
		}
		type share struct {
			label string
			n     uint64
		}
		var kept []share
		var covered uint64
		r := Rule{
			Name:    "learned-" + k.scope.String() + "-" + safeName(k.subject),
			Scope:   k.scope,
			Subject: k.subject,
			Effect:  Allow,
			Action:  o.Action,
		}
		for nw, n := range traffic[k] {
			if nw == (network{}) || float64(n) < o.MinShare*float64(total) {
				continue
			}
			covered += n
			switch {
			case nw.asn != 0:
				r.ASNs = append(r.ASNs, nw.asn)
				kept = append(kept, share{"AS" + strconv.FormatUint(uint64(nw.asn), 10), n})
			case nw.country != "":
				r.Countries = append(r.Countries, nw.country)
				kept = append(kept, share{nw.country, n})
			default:
				r.CIDRs = append(r.CIDRs, nw.prefix)
				kept = append(kept, share{nw.prefix.String(), n})
			}
		}
		if len(kept) == 0 {
			continue
		}
		slices.Sort(r.ASNs)
		slices.Sort(r.Countries)
		slices.SortFunc(r.CIDRs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		slices.SortFunc(kept, func(a, b share) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.label, b.label)) })
		var c strings.Builder
		fmt.Fprintf(&c, "learned from %d requests, %s of them covered:", total, percent(covered, total))
		for _, s := range kept {
			fmt.Fprintf(&c, " %s %s,", s.label, percent(s.n, total))
		}
		r.Comment = strings.TrimSuffix(c.String(), ",")
		rules = append(rules, r)
	}
	return rules
}

func percent(n, total uint64) string {
	return strconv.FormatFloat(100*float64(n)/float64(total), 'f', 1, 64) + "%"
}

// safeName replaces the characters a rule name may not hold.
func safeName(s string) string {
	return strings.Map(func(c rune) rune {
		if c == ',' || c == '"' || c < ' ' || c == 0x7f {
			return '_'
		}
		return c
	}, s)
}

// Format writes rules as a YAML list in the shape the package
// documentation describes, each rule preceded by its Comment as a YAML
// comment, for an operator to review and paste into the configuration.
func Format(w io.Writer, rules []Rule) error {
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	flow := func(items []*yaml.Node) *yaml.Node {
		return &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: items}
	}
	list := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range rules {
		m := &yaml.Node{Kind: yaml.MappingNode, HeadComment: r.Comment}
		field := func(k string, v *yaml.Node) { m.Content = append(m.Content, str(k), v) }
		field("name", str(r.Name))
		field("scope", str(r.Scope.String()))
		if r.Subject != "" {
			field("subject", str(r.Subject))
		}
		field("effect", str(r.Effect.String()))
		if len(r.CIDRs) > 0 {
			var items []*yaml.Node
			for _, p := range r.CIDRs {
				items = append(items, str(p.String()))
			}
			field("cidrs", flow(items))
		}
		if len(r.ASNs) > 0 {
			var items []*yaml.Node
			for _, n := range r.ASNs {
				items = append(items, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(uint64(n), 10)})
			}
			field("asns", flow(items))
		}
		if len(r.Countries) > 0 {
			var items []*yaml.Node
			for _, c := range r.Countries {
				// Quoted: YAML 1.1 readers take a bare NO (Norway) for false.
				n := str(c)
				n.Style = yaml.DoubleQuotedStyle
				items = append(items, n)
			}
			field("countries", flow(items))
		}
		field("action", str(r.Action.String()))
		list.Content = append(list.Content, m)
	}
	// Encoded in memory first: yaml.v3 flattens the writer's errors.
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(list); err != nil {
		return fmt.Errorf("zone: format: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("zone: format: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("zone: format: %w", err)
	}
	return nil
}
