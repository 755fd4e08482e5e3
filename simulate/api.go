package simulate

import (
	"math"
	"math/rand/v2"
	"strings"
)

// EndpointKind says what an endpoint does, which shapes its responses.
type EndpointKind uint8

const (
	Detail EndpointKind = iota // one object
	List                       // a page of objects
	Poll                       // a change feed, usually near empty
	Export                     // a bulk export page
	Write                      // creates or changes an object
	Admin                      // administration, outside ordinary scopes
)

// Endpoint is one route of the simulated API: a CRM much like the SaaS
// systems the OAuth-token breaches emptied.
type Endpoint struct {
	Method   string
	Template string // route template, the event's endpoint
	Scope    string // OAuth scope the route needs
	Kind     EndpointKind
	Size     float64 // median response bytes
	Spread   float64 // log-normal sigma of the response size
	Latency  float64 // median milliseconds
	Body     float64 // median request body bytes; 0 for none
	Status   int     // status of a successful call
}

// Response draws a response size for a successful call.
func (ep *Endpoint) Response(r *rand.Rand) int64 {
	return logNormal(r, ep.Size, ep.Spread, 2)
}

// Time draws a latency in milliseconds for a response of size bytes.
func (ep *Endpoint) Time(r *rand.Rand, size int64) float64 {
	ms := ep.Latency*math.Exp(0.35*r.NormFloat64()) + float64(size)/25_000 // ~25 MB/s
	return math.Round(max(ms, 1)*10) / 10
}

func logNormal(r *rand.Rand, median, sigma float64, floor int64) int64 {
	return max(floor, int64(median*math.Exp(sigma*r.NormFloat64())))
}

// resource returns the id prefix of the object a template names, from its
// last "{id}": "/v1/accounts/{id}" → "acc".
func resource(template string) string {
	i := strings.LastIndex(template, "/{id}")
	if i < 0 {
		return ""
	}
	seg := template[strings.LastIndexByte(template[:i], '/')+1 : i]
	if seg == "users" {
		return "usr"
	}
	if len(seg) > 3 {
		seg = seg[:3]
	}
	return seg
}

// api is the simulated API surface.
type api struct {
	me, accounts, account, contacts, contact, contactUpdate *Endpoint
	opportunities, opportunity, cases, caseComment, search  *Endpoint
	activities, notifications, changes                      *Endpoint
	health                                                  *Endpoint // liveness probe, no scope
	exportAccounts, exportContacts, exportOpportunities     *Endpoint
	admin                                                   []*Endpoint // outside every ordinary credential's scope
	all                                                     []*Endpoint
}

func newAPI() *api {
	ep := func(method, tmpl, scope string, kind EndpointKind, size, spread, lat float64) *Endpoint {
		e := &Endpoint{Method: method, Template: tmpl, Scope: scope, Kind: kind, Size: size, Spread: spread, Latency: lat, Status: 200}
		switch {
		case kind == Write && method == "POST":
			e.Status, e.Body = 201, 600
		case kind == Write:
			e.Body = 350
		}
		return e
	}
	a := &api{
		me:            ep("GET", "/v1/me", "profile", Detail, 850, 0.1, 25),
		accounts:      ep("GET", "/v1/accounts", "accounts:read", List, 24_000, 0.45, 110),
		account:       ep("GET", "/v1/accounts/{id}", "accounts:read", Detail, 3_200, 0.5, 45),
		contacts:      ep("GET", "/v1/contacts", "contacts:read", List, 28_000, 0.45, 120),
		contact:       ep("GET", "/v1/contacts/{id}", "contacts:read", Detail, 2_400, 0.45, 40),
		contactUpdate: ep("PATCH", "/v1/contacts/{id}", "contacts:write", Write, 2_400, 0.3, 85),
		opportunities: ep("GET", "/v1/opportunities", "opportunities:read", List, 19_000, 0.5, 130),
		opportunity:   ep("GET", "/v1/opportunities/{id}", "opportunities:read", Detail, 2_900, 0.4, 50),
		cases:         ep("GET", "/v1/cases", "cases:read", List, 15_000, 0.5, 140),
		caseComment:   ep("POST", "/v1/cases/{id}/comments", "cases:write", Write, 700, 0.3, 95),
		search:        ep("GET", "/v1/search", "search", List, 7_500, 0.6, 210),
		activities:    ep("POST", "/v1/activities", "activities:write", Write, 450, 0.2, 70),
		notifications: ep("GET", "/v1/notifications", "notifications:read", List, 1_600, 0.6, 35),
		changes:       ep("GET", "/v1/changes", "changes:read", Poll, 600, 0.7, 55),

		exportAccounts:      ep("GET", "/v1/export/accounts", "bulk:read", Export, 1_400_000, 0.25, 1400),
		exportContacts:      ep("GET", "/v1/export/contacts", "bulk:read", Export, 1_800_000, 0.25, 1600),
		exportOpportunities: ep("GET", "/v1/export/opportunities", "bulk:read", Export, 1_100_000, 0.25, 1300),
	}
	for _, x := range [][3]string{
		{"GET", "/v1/admin/users", "admin:users"},
		{"POST", "/v1/admin/users", "admin:users"},
		{"GET", "/v1/admin/api-keys", "admin:keys"},
		{"POST", "/v1/admin/api-keys", "admin:keys"},
		{"GET", "/v1/admin/audit-log", "admin:audit"},
		{"GET", "/v1/admin/settings/sso", "admin:settings"},
		{"PUT", "/v1/admin/settings/sso", "admin:settings"},
		{"GET", "/v1/admin/integrations", "admin:integrations"},
		{"GET", "/v1/admin/roles", "admin:users"},
		{"GET", "/v1/billing/invoices", "billing:read"},
		{"GET", "/v1/users/{id}/tokens", "admin:keys"},
		{"GET", "/v1/export/users", "bulk:read"},
		{"GET", "/v1/webhooks", "webhooks:manage"},
		{"POST", "/v1/webhooks", "webhooks:manage"},
	} {
		a.admin = append(a.admin, &Endpoint{Method: x[0], Template: x[1], Scope: x[2], Kind: Admin,
			Size: 140, Spread: 0.1, Latency: 20, Status: 200})
	}
	a.all = []*Endpoint{a.me, a.accounts, a.account, a.contacts, a.contact, a.contactUpdate,
		a.opportunities, a.opportunity, a.cases, a.caseComment, a.search, a.activities,
		a.notifications, a.changes, a.exportAccounts, a.exportContacts, a.exportOpportunities}
	a.all = append(a.all, a.admin...)
	a.health = &Endpoint{Method: "GET", Template: "/healthz", Kind: Detail, Size: 62, Spread: 0.05, Latency: 3, Status: 200}
	a.all = append(a.all, a.health)
	return a
}
