package extauthz

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/vigil-sec/vigil/binding/bindingtest"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/gate/gatetest"
	"github.com/vigil-sec/vigil/policy"
)

// TestSourceCertificate: the client certificate Envoy sends in
// attributes.source.certificate (include_peer_certificate) reaches the
// Checker as its thumbprint; one that is not a certificate is counted and
// the request judged without one.
func TestSourceCertificate(t *testing.T) {
	c := bindingtest.NewCA(t).Client(t, "svc-billing")
	ts := startServer(t, Options{})
	for _, tc := range []struct {
		name, cert, want string
	}{
		{"escaped pem", c.EscapedPEM(), c.Thumbprint()},
		{"none", "", ""},
		{"not a certificate", "-----BEGIN%20CERTIFICATE-----%0Ajunk", ""},
	} {
		req := newRequest(tc.name, "/allow")
		req.Attributes.Source.Certificate = tc.cert
		resp, err := ts.client.Check(context.Background(), req)
		if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
			t.Fatalf("%s: %v %v", tc.name, resp.GetStatus(), err)
		}
		if got := ts.checker.get(t, tc.name).ClientCert; got != tc.want {
			t.Errorf("%s: ClientCert %q, want %q", tc.name, got, tc.want)
		}
	}
	if n := ts.srv.Stats().BadCertificates; n != 1 {
		t.Errorf("BadCertificates %d, want 1", n)
	}
}

type nonceChecker struct{ res gate.Result }

func (c *nonceChecker) Check(_ context.Context, _ *gate.Request, res *gate.Result) error {
	return gatetest.Fill(res, &c.res, nil)
}
func (c *nonceChecker) Report(gate.Ticket, gate.Outcome) {}

// TestDPoPNonceDenied: a use_dpop_nonce denial carries DPoP-Nonce to the
// client, which Envoy passes on with the 401.
func TestDPoPNonceDenied(t *testing.T) {
	const nonce = "AAAAAAAcnVI6ZsXg2V1yZx0nKkTHGmr3"
	s := NewServer(&nonceChecker{res: gate.Result{
		Verdict: gate.Verdict{Kind: gate.DPoP, Level: policy.StepUp, Problem: "use_dpop_nonce", DPoPNonce: nonce},
		Response: gate.Response{Status: http.StatusUnauthorized, Header: http.Header{
			"Www-Authenticate": {`DPoP error="use_dpop_nonce"`}, "Dpop-Nonce": {nonce}}},
	}}, Options{})
	resp, err := s.Check(context.Background(), newRequest("nonce", "/v1/orders"))
	if err != nil {
		t.Fatal(err)
	}
	d := resp.GetDeniedResponse()
	if codes.Code(resp.GetStatus().GetCode()) != codes.Unauthenticated || d.GetStatus().GetCode() != 401 {
		t.Fatalf("answered %v", resp)
	}
	var got []string
	for _, h := range d.GetHeaders() {
		got = append(got, h.GetHeader().GetKey()+": "+h.GetHeader().GetValue())
	}
	if !strings.Contains(strings.Join(got, "\n"), "dpop-nonce: "+nonce) {
		t.Errorf("headers %q lack the nonce", got)
	}
}
