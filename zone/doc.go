// Package zone checks that credentials are used from the networks they
// belong to: allow and deny rules by CIDR, AS number and country, for
// every request (global), for one client_id, or for one credential (its
// token id), e.g. "client chatsync calls only from AS16509".
//
// # Semantics
//
// A request matches a rule if its address is in one of the rule's CIDRs,
// or its AS number is one of its ASNs, or its country is one of its
// countries. An unknown AS number (0) or country ("") matches nothing, so
// a request GeoIP knows nothing of is outside every zone defined by ASNs
// or countries. IPv4-mapped IPv6 addresses are compared as IPv4, in
// requests and in CIDRs alike.
//
// The rules that apply to a request are the global ones, those of its
// client_id and those of its credential. Then:
//
//   - Deny rules always apply, whatever their scope: a request matching
//     one is a violation. No allow rule overrides a deny rule.
//   - Allow rules are decided by the most specific scope that has any for
//     the request: the credential's if it has allow rules, else the
//     client's, else the global ones. The request must match at least one
//     allow rule of that scope. The less specific allow rules are not
//     consulted, so a credential's allow rule widens a global or client
//     allow-list for that credential rather than narrowing it: a global
//     "EU only" and a credential allow for AS16509 let that credential
//     call from AS16509 anywhere, and from nowhere else, not even the EU.
//     Give the credential every network it needs.
//   - Of several violations, the one with the strongest action (block
//     over step_up) is reported; among equals, deny rules before the
//     allow-list, and deny rules in configuration order. The allow-list's
//     action is the strongest of the deciding scope's allow rules.
//
// Check does no allocation: rules are indexed by subject at Compile, with
// CIDRs masked, made disjoint and sorted for a binary search.
//
// # Configuration
//
// Rules are configured as a YAML list with these keys (Format writes
// them so, and a config package reads the same):
//
//	# one rule of the list
//	- name: chatsync-aws        # required, unique; no commas or quotes
//	  scope: client             # global | client | credential
//	  subject: chatsync         # client_id or token id; omitted for global
//	  effect: allow             # allow | deny
//	  cidrs: [10.20.0.0/16, "2001:db8::/32"]
//	  asns: [16509, 14618]
//	  countries: ["DE", "FR"]   # ISO 3166-1 alpha-2, any case
//	  action: step_up           # block | step_up
//
// At least one of cidrs, asns and countries is required. A credential's
// subject is its token id (the tk_… fingerprint vigil logs), never the
// token: subjects appear in decisions' reasons. Rules with asns or
// countries need a GeoIP database (NeedsGeo).
//
// # Learning zones
//
// Propose turns observed traffic (requests per subject and network) into
// one allow rule per client or credential, listing the AS numbers that
// carry a noticeable share of its requests; Format prints them with the
// evidence as comments, for an operator to review, not to apply blindly.
package zone
