// Command grpcload drives Envoy external authorization (gRPC ext_authz)
// Check calls against a server and prints the throughput and the latency
// distribution of the calls.
//
// It runs -c concurrent clients over -conns gRPC connections for -d (after
// a -warmup that is not measured), each sending CheckRequests shaped like
// Envoy's HTTP filter's: an API call with Authorization: Bearer from one of
// -tokens credentials, each with its usual source address and user agent
// (and, now and then, another address), varied methods and paths, a fresh
// request id and time.
//
//	grpcload -addr 127.0.0.1:9191 -c 64 -conns 4 -d 10s -tokens 300
//
// With -serve ADDR it only serves ext_authz at ADDR with a trivial Checker
// (allow, 2% throttled) until interrupted; with -self it starts that server
// in its own process on a loopback port and drives it. Both measure the
// extauthz adapter and gRPC alone, not vigil's engine.
//
// Latencies are kept in a log-linear histogram (128 buckets per power of
// two: percentiles within 0.8 %); the maximum is exact.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-sec/vigil/extauthz"
	"github.com/vigil-sec/vigil/gate"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	addr    string
	c       int
	conns   int
	d       time.Duration
	warmup  time.Duration
	tokens  int
	timeout time.Duration
	seed    uint64
	serve   string
	self    bool
	profile string
	workers int
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("grpcload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.addr, "addr", "", "ext_authz server `host:port`")
	fs.IntVar(&o.c, "c", 64, "concurrent clients (calls in flight)")
	fs.IntVar(&o.conns, "conns", 4, "gRPC connections the clients share")
	fs.DurationVar(&o.d, "d", 10*time.Second, "measured duration")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before -d")
	fs.IntVar(&o.tokens, "tokens", 300, "distinct bearer tokens")
	fs.DurationVar(&o.timeout, "timeout", time.Second, "per-call deadline")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed of the traffic")
	fs.StringVar(&o.serve, "serve", "", "only serve ext_authz with a trivial Checker at `host:port` until interrupted")
	fs.BoolVar(&o.self, "self", false, "serve the trivial Checker in this process on a loopback port and load it")
	fs.IntVar(&o.workers, "workers", 0, "with -serve or -self: the gRPC server's stream workers (grpc.NumStreamWorkers; 0: a goroutine per call)")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of this process to `FILE`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			fmt.Fprintln(stderr, "grpcload:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "grpcload:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if o.serve != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := serve(ctx, o.serve, o.workers, stderr); err != nil {
			fmt.Fprintln(stderr, "grpcload:", err)
			return 1
		}
		return 0
	}
	if o.c < 1 || o.conns < 1 || o.tokens < 1 || o.d <= 0 || o.warmup < 0 || (o.addr == "") == !o.self {
		fmt.Fprintln(stderr, "grpcload: need exactly one of -addr and -self, and -c, -conns, -tokens ≥ 1, -d > 0")
		return 2
	}
	if o.self {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(stderr, "grpcload:", err)
			return 1
		}
		g := newTrivialServer(o.workers)
		go func() { _ = g.Serve(lis) }()
		defer g.Stop()
		o.addr = lis.Addr().String()
	}
	rep, err := load(o)
	if err != nil {
		fmt.Fprintln(stderr, "grpcload:", err)
		return 1
	}
	rep.print(stdout, o)
	if rep.calls == 0 {
		return 1
	}
	return 0
}

// serve serves ext_authz with the trivial Checker at addr until ctx ends.
func serve(ctx context.Context, addr string, workers int, stderr io.Writer) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	g := newTrivialServer(workers)
	go func() {
		<-ctx.Done()
		g.GracefulStop()
	}()
	fmt.Fprintf(stderr, "grpcload: serving ext_authz with a trivial Checker at %s\n", lis.Addr())
	if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func newTrivialServer(workers int) *grpc.Server {
	var opts []grpc.ServerOption
	if workers > 0 {
		opts = append(opts, grpc.NumStreamWorkers(uint32(workers)))
	}
	g := grpc.NewServer(opts...)
	extauthz.NewServer(newTrivialChecker(), extauthz.Options{}).Register(g)
	return g
}

// trivialChecker allows every request with vigil's upstream headers, except
// 2% of credentials (by a hash of the Authorization header) that it
// throttles: the adapter's and gRPC's cost without vigil's engine.
type trivialChecker struct{ allow, deny *gate.Result }

func newTrivialChecker() trivialChecker {
	return trivialChecker{
		allow: &gate.Result{Response: gate.Response{Status: http.StatusOK, Upstream: http.Header{
			"X-Vigil-Decision": {"allow"},
			"X-Vigil-Risk":     {"0.5"},
			"X-Vigil-Token-Id": {"tk_47ea362748d103150f3ce2c99c79a105"},
		}}},
		deny: &gate.Result{Response: gate.Response{
			Status: http.StatusTooManyRequests,
			Header: http.Header{"Retry-After": {"30"}, "Content-Type": {"application/problem+json"}},
			Body:   []byte(`{"type":"about:blank","title":"Too Many Requests","status":429}`),
		}},
	}
}

func (c trivialChecker) Check(_ context.Context, r *gate.Request, res *gate.Result) error {
	h := fnv.New32a()
	_, _ = io.WriteString(h, r.Header.Get("authorization"))
	if h.Sum32()%50 == 0 {
		*res = *c.deny
		return nil
	}
	*res = *c.allow
	return nil
}

func (trivialChecker) Report(gate.Ticket, gate.Outcome) {}

// report is what the clients measured.
type report struct {
	calls, allowed, denied uint64
	errs                   map[codes.Code]uint64
	hist                   histogram
	max                    time.Duration
	window                 time.Duration
}

// load runs the clients and merges what they measured.
func load(o options) (*report, error) {
	clients := make([]authv3.AuthorizationClient, o.conns)
	for i := range clients {
		conn, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", o.addr, err)
		}
		defer conn.Close()
		conn.Connect()
		clients[i] = authv3.NewAuthorizationClient(conn)
	}
	tr := newTraffic(o.tokens, o.seed)
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.d)

	reports := make([]report, o.c)
	var wg sync.WaitGroup
	for w := range o.c {
		wg.Go(func() {
			rep := &reports[w]
			rep.errs = map[codes.Code]uint64{}
			c := clients[w%len(clients)]
			ring := tr.ring(w, 256)
			id := "w" + strconv.Itoa(w) + "-"
			for i := 0; ; i++ {
				req := ring[i%len(ring)]
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				h := req.Attributes.Request.Http
				h.Id = id + strconv.Itoa(i)
				h.Headers["x-request-id"] = h.Id
				req.Attributes.Request.Time = timestamppb.New(t0)
				ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				resp, err := c.Check(ctx, req)
				cancel()
				lat := time.Since(t0)
				if t0.Before(measureFrom) {
					continue
				}
				rep.calls++
				if err != nil {
					rep.errs[status.Code(err)]++
					continue
				}
				if resp.GetStatus().GetCode() == int32(codes.OK) {
					rep.allowed++
				} else {
					rep.denied++
				}
				rep.hist.record(lat)
				rep.max = max(rep.max, lat)
			}
		})
	}
	wg.Wait()
	total := &report{errs: map[codes.Code]uint64{}, window: o.d}
	for i := range reports {
		r := &reports[i]
		total.calls += r.calls
		total.allowed += r.allowed
		total.denied += r.denied
		for k, v := range r.errs {
			total.errs[k] += v
		}
		total.hist.merge(&r.hist)
		total.max = max(total.max, r.max)
	}
	return total, nil
}

func (r *report) print(w io.Writer, o options) {
	fmt.Fprintf(w, "grpcload: %s, %d clients over %d connections, %v measured after %v warm-up, %d tokens\n",
		o.addr, o.c, o.conns, o.d, o.warmup, o.tokens)
	ok := r.allowed + r.denied
	fmt.Fprintf(w, "calls      %d in %v = %.0f calls/s (%.0f decisions/s)\n",
		r.calls, r.window, float64(r.calls)/r.window.Seconds(), float64(ok)/r.window.Seconds())
	if ok > 0 {
		fmt.Fprintf(w, "decisions  allowed %d (%.1f%%), denied %d (%.1f%%)\n",
			r.allowed, 100*float64(r.allowed)/float64(ok), r.denied, 100*float64(r.denied)/float64(ok))
	}
	var errs []string
	for c, n := range r.errs {
		errs = append(errs, fmt.Sprintf("%v %d", c, n))
	}
	fmt.Fprintf(w, "errors     %d %s\n", r.calls-ok, strings.Join(errs, ", "))
	if ok > 0 {
		ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) + " ms" }
		fmt.Fprintf(w, "latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
			ms(r.hist.quantile(0.50)), ms(r.hist.quantile(0.90)), ms(r.hist.quantile(0.99)),
			ms(r.hist.quantile(0.999)), ms(r.max))
	}
}

// histogram counts durations in nanoseconds in log-linear buckets: values
// below 2^subBits exactly, larger ones with 2^subBits buckets per power of
// two.
type histogram struct {
	counts [64 << subBits]uint64
	n      uint64
}

const subBits = 7

func bucket(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)<<subBits + int(v>>shift) - 1<<subBits
}

// upper returns the largest value of bucket i.
func upper(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	top := uint64(i&(1<<subBits-1)) + 1<<subBits
	return (top+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucket(uint64(d))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the upper bound of the bucket holding the q-quantile.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(upper(i))
		}
	}
	return 0
}

// traffic is the population requests are drawn from: tokens, each with a
// home address and user agent.
type traffic struct {
	tokens []credential
	paths  []endpoint
	seed   uint64
}

// endpoint is a method and a path format with up to two %d.
type endpoint struct{ method, format string }

type credential struct {
	auth, ua, home string
}

func newTraffic(n int, seed uint64) *traffic {
	userAgents := []string{
		"acme-sdk/4.2.1 (python 3.12)",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"okhttp/4.12.0",
		"curl/8.5.0",
		"Go-http-client/2.0",
		"PostmanRuntime/7.37.0",
	}
	rng := rand.New(rand.NewPCG(seed, 0x76696769))
	t := &traffic{tokens: make([]credential, n), seed: seed, paths: []endpoint{
		{"GET", "/v1/customers/%d"},
		{"GET", "/v1/customers/%d/orders?page=%d&limit=50"},
		{"GET", "/v1/orders/%d"},
		{"POST", "/v1/orders"},
		{"PATCH", "/v1/orders/%d"},
		{"GET", "/v1/invoices?status=open&cursor=%d"},
		{"DELETE", "/v1/sessions/%d"},
		{"GET", "/v1/search?q=item%d&sort=relevance"},
	}}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t.tokens {
		var b strings.Builder
		b.WriteString("Bearer ")
		for range 43 {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		t.tokens[i] = credential{auth: b.String(), ua: userAgents[rng.IntN(len(userAgents))], home: address(rng)}
	}
	return t
}

// address returns a random client address, one in ten IPv6.
func address(rng *rand.Rand) string {
	if rng.IntN(10) == 0 {
		return fmt.Sprintf("2001:db8:%x:%x::%x", rng.IntN(1<<16), rng.IntN(1<<16), rng.IntN(1<<16))
	}
	return fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
}

// ring returns n requests for worker w, which owns them.
func (t *traffic) ring(w, n int) []*authv3.CheckRequest {
	rng := rand.New(rand.NewPCG(t.seed, uint64(w)+1))
	out := make([]*authv3.CheckRequest, n)
	for i := range out {
		cred := t.tokens[rng.IntN(len(t.tokens))]
		src := cred.home
		if rng.IntN(20) == 0 {
			src = address(rng)
		}
		p := t.paths[rng.IntN(len(t.paths))]
		path := p.format
		if strings.Contains(path, "%d") {
			args := []any{rng.IntN(100000)}
			if strings.Count(path, "%d") == 2 {
				args = append(args, 1+rng.IntN(20))
			}
			path = fmt.Sprintf(path, args...)
		}
		out[i] = checkRequest(p.method, path, cred, src, uint32(1024+rng.IntN(60000)))
	}
	return out
}

func checkRequest(method, path string, cred credential, src string, port uint32) *authv3.CheckRequest {
	headers := map[string]string{
		":authority":        "api.example.com",
		":method":           method,
		":path":             path,
		":scheme":           "https",
		"accept":            "application/json",
		"accept-encoding":   "gzip, br",
		"authorization":     cred.auth,
		"user-agent":        cred.ua,
		"x-forwarded-for":   src,
		"x-forwarded-proto": "https",
		"x-request-id":      "",
	}
	size := int64(0)
	if method == "POST" || method == "PATCH" {
		headers["content-type"] = "application/json"
		headers["content-length"] = "312"
		size = 312
	}
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr(src, port)},
		Destination: &authv3.AttributeContext_Peer{Address: addr("10.0.0.2", 8443)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method:   method,
			Headers:  headers,
			Path:     path,
			Host:     "api.example.com",
			Scheme:   "https",
			Size:     size,
			Protocol: "HTTP/2",
		}},
	}}
}
