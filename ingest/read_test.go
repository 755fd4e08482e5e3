package ingest_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/ingest"
)

func gzipped(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return z.Bytes()
}

// TestOpenGzip: gzipped files are read transparently, by their content
// and not their name, and decode like the plain ones.
func TestOpenGzip(t *testing.T) {
	dir := t.TempDir()
	for _, sf := range []struct {
		format ingest.Format
		file   string
	}{{ingest.CloudTrail, "testdata/cloudtrail.json"}, {ingest.NginxCombined, "testdata/nginx.log"}} {
		plain, err := os.ReadFile(sf.file)
		if err != nil {
			t.Fatal(err)
		}
		want := readLines(t, sf.file, sf.format)
		for _, name := range []string{"log.gz", "log.txt"} {
			path := filepath.Join(dir, string(sf.format)+name)
			if err := os.WriteFile(path, gzipped(t, plain), 0o600); err != nil {
				t.Fatal(err)
			}
			got := readLines(t, path, sf.format)
			if len(got) != len(want) || !bytes.Equal(bytes.Join(got, nil), bytes.Join(want, nil)) {
				t.Errorf("%s %s: %d lines differ from the plain file's %d", sf.format, name, len(got), len(want))
			}
			// Detect sees the decompressed start.
			in, err := ingest.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			sample := make([]byte, 64<<10)
			n, _ := io.ReadFull(in, sample)
			in.Close()
			if f, err := ingest.Detect(sample[:n]); f != sf.format {
				t.Errorf("%s %s: detected %q, %v", sf.format, name, f, err)
			}
		}
	}
	// Two gzip streams one after the other, as cat a.gz b.gz makes.
	two := append(gzipped(t, []byte("a\n")), gzipped(t, []byte("b\n"))...)
	r, err := ingest.NewReader(bytes.NewReader(two))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "a\nb\n" {
		t.Errorf("two streams: %q, %v", b, err)
	}
	// A broken header is an error; a short plain input is not.
	if _, err := ingest.NewReader(bytes.NewReader([]byte{0x1f, 0x8b, 0})); err == nil {
		t.Error("broken gzip header: no error")
	}
	if r, err := ingest.NewReader(strings.NewReader("x")); err != nil {
		t.Error(err)
	} else if b, _ := io.ReadAll(r); string(b) != "x" {
		t.Errorf("one byte: %q", b)
	}
	if _, err := ingest.Open(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLines(t *testing.T) {
	rec := func(i int) string {
		return fmt.Sprintf(`{"eventTime":"2026-03-04T01:56:%02dZ","eventName":"Get\"Obj]ect}","x":[1,{"y":"a\\\"b"}],"z":null}`, i%60)
	}
	compact := func(i int) string { return rec(i) }
	tests := []struct {
		name, in string
		want     []string
	}{
		{"one line", `{"Records":[` + rec(1) + `,` + rec(2) + `]}`, []string{compact(1), compact(2)}},
		{"indented", "{\n  \"Records\" : [\n    " + strings.ReplaceAll(rec(1), `,"x"`, ",\n      \"x\"") + " ,\n\t" + rec(2) + "\n  ]\n}\n", []string{compact(1), compact(2)}},
		{"two documents", `{"Records":[` + rec(1) + `]}` + "\n" + `{"Records":[` + rec(2) + `]}`, []string{compact(1), compact(2)}},
		{"empty", `{"Records":[]}`, nil},
		{"keys after the array", `{"Records":[` + rec(1) + `],"Digest":{"a":"]}"}}` + `{"Records":[` + rec(3) + `]}`, []string{compact(1), compact(3)}},
		{"JSON lines pass through", rec(1) + "\n" + rec(2) + "\n", []string{rec(1), rec(2)}},
		{"not records", `{"records":[1]}`, []string{`{"records":[1]}`}},
		{"scalars", `{"Records":[1,"a",null]}`, []string{"1", `"a"`, "null"}},
		{"truncated", `{"Records":[` + rec(1) + `,{"eventTime":"2026`, []string{compact(1), `{"eventTime":"2026`}},
		{"garbage after a record", `{"Records":[` + rec(1) + ` x]}`, []string{compact(1), `x]}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r },
				iotest.OneByteReader,
				iotest.HalfReader,
			} {
				b, err := io.ReadAll(ingest.Lines(wrap(strings.NewReader(tt.in)), ingest.CloudTrail))
				if err != nil {
					t.Fatal(err)
				}
				got := splitLines(t, bytes.NewReader(b))
				if len(got) != len(tt.want) {
					t.Fatalf("%d lines, want %d:\n%s", len(got), len(tt.want), b)
				}
				for i := range got {
					if string(got[i]) != tt.want[i] {
						t.Errorf("line %d:\n got %s\nwant %s", i+1, got[i], tt.want[i])
					}
				}
			}
		})
	}
	// Other formats pass through, even a Records document.
	in := strings.NewReader(`{"Records":[1]}`)
	if r := ingest.Lines(in, ingest.NginxJSON); r != io.Reader(in) {
		t.Error("Lines wraps the input of another format")
	}
	// A small p: Read makes progress one byte at a time.
	r := ingest.Lines(strings.NewReader(`{"Records":[{"a":1},{"b":2}]}`), ingest.CloudTrail)
	var out []byte
	p := make([]byte, 1)
	for {
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(out) != "{\"a\":1}\n{\"b\":2}\n" {
		t.Errorf("one byte at a time: %q", out)
	}
}

// TestLinesLongRecord: a record longer than event.MaxLineBytes comes out
// as one line that long, for the reader to reject.
func TestLinesLongRecord(t *testing.T) {
	big := `{"eventName":"` + strings.Repeat("x", event.MaxLineBytes) + `"}`
	in := `{"Records":[{"a":1},` + big + `,{"b":2}]}`
	b, err := io.ReadAll(ingest.Lines(strings.NewReader(in), ingest.CloudTrail))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 || lines[0] != `{"a":1}` || lines[1] != big || lines[2] != `{"b":2}` {
		t.Errorf("%d lines", len(lines))
	}
}

// recordsSource generates a CloudTrail document of about size bytes
// without holding it: a Records array of realistic records.
type recordsSource struct {
	size, n int
	buf     []byte // what is left of next
	next    []byte
	done    bool
}

func (s *recordsSource) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		switch {
		case s.done:
			return 0, io.EOF
		case s.n == 0:
			s.next = append(s.next[:0], `{"Records":[`...)
		case s.n*len(cloudTrailRecord) >= s.size:
			s.buf, s.done = []byte(`]}`), true
			continue
		default:
			s.next = append(s.next[:0], ',')
		}
		s.next = append(s.next, cloudTrailRecord...)
		s.buf = s.next
		s.n++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// TestLinesBoundedMemory streams a 50 MB Records document through Lines
// and the decoder: the heap does not grow with the file.
func TestLinesBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB of records")
	}
	src := &recordsSource{size: 50 << 20}
	r := ingest.Lines(src, ingest.CloudTrail)
	d := newDecoder(t, ingest.CloudTrail)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	buf := make([]byte, 256<<10)
	var line []byte
	records, maxHeap := 0, uint64(0)
	var ev event.Event
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			if c != '\n' {
				line = append(line, c)
				continue
			}
			if err := d.Decode(line, &ev); err != nil {
				t.Fatalf("record %d: %v", records+1, err)
			}
			records++
			line = line[:0]
			if records%20000 == 0 {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				maxHeap = max(maxHeap, m.HeapInuse)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if records != src.n {
		t.Fatalf("%d records, want %d", records, src.n)
	}
	// The decoder's arena takes new 64 KiB chunks as events are kept, and
	// the garbage collector may leave some of them: bound generously, far
	// below the 50 MB the file holds.
	const bound = 16 << 20
	if maxHeap > before.HeapInuse+bound || after.HeapInuse > before.HeapInuse+bound {
		t.Errorf("heap in use grew from %d to at most %d (%d after): more than %d", before.HeapInuse, maxHeap, after.HeapInuse, bound)
	}
	t.Logf("%d records, %d MB; heap in use %d KB before, at most %d KB during, %d KB after",
		records, src.size>>20, before.HeapInuse>>10, maxHeap>>10, after.HeapInuse>>10)
}

// cloudTrailRecord is a realistic record of about 1.5 KB.
const cloudTrailRecord = `{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEROLEID1234:deploy-7","arn":"arn:aws:sts::111122223333:assumed-role/deploy/deploy-7","accountId":"111122223333","accessKeyId":"ASIAEXAMPLE000000007","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLEROLEID1234","arn":"arn:aws:iam::111122223333:role/deploy","accountId":"111122223333","userName":"deploy"},"webIdFederationData":{},"attributes":{"creationDate":"2026-03-04T07:59:12Z","mfaAuthenticated":"false"}}},"eventTime":"2026-03-04T08:00:36Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.77","userAgent":"[aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#s3api.get-object]","requestParameters":{"bucketName":"artifacts-111122223333","Host":"artifacts-111122223333.s3.us-east-1.amazonaws.com","key":"builds/311/app.tar.gz"},"responseElements":null,"additionalEventData":{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"vMQ0Rq+2Xx1VYWk3u7X0Lm1s5QZ0Y1o3o6mZk8Yb0gA=","bytesTransferredOut":5518324},"requestID":"8XJ2M7E6Y3BWQ3Z4","eventID":"50970843-569b-111f-15b4-066e11d012a7","readOnly":true,"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::artifacts-111122223333/builds/311/app.tar.gz"},{"accountId":"111122223333","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::artifacts-111122223333"}],"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"111122223333","eventCategory":"Data","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"artifacts-111122223333.s3.us-east-1.amazonaws.com"}}`

func TestDetect(t *testing.T) {
	for _, sf := range sampleFiles {
		b, err := os.ReadFile(sf.file)
		if err != nil {
			t.Fatal(err)
		}
		if f, err := ingest.Detect(b[:min(len(b), 64<<10)]); f != sf.format {
			t.Errorf("%s: detected %q, %v", sf.file, f, err)
		}
		// From a sample cut in the middle of the first record.
		if sf.format != ingest.NginxCombined && sf.format != ingest.Vigil {
			if f, err := ingest.Detect(b[:min(len(b), 180)]); f != sf.format {
				t.Errorf("%s, 180 bytes: detected %q, %v", sf.file, f, err)
			}
		}
	}
	for _, tt := range []struct {
		sample string
		want   ingest.Format
	}{
		{"\n\n  {\n \"Records\": [\n", ingest.CloudTrail},
		{"\ufeff" + cloudTrailRecord + "\n", ingest.CloudTrail},
		{"garbage\n" + `{"requestId":"r","routeKey":"GET /x","status":"200"}`, ingest.APIGateway},
		{`{"start_time":"2026-03-04T01:56:48.1Z","response_code":200}`, ingest.Envoy},
		{`{"action":"repo.create","actor":"mona"}`, ingest.GitHub},
	} {
		if f, err := ingest.Detect([]byte(tt.sample)); f != tt.want {
			t.Errorf("Detect(%.40q) = %q, %v; want %s", tt.sample, f, err, tt.want)
		}
	}
	for _, sample := range []string{"", " \n\n", "hello world\n", `{"a":1}`, "{", "1 2 3\n4\n5\n6\n7\n8"} {
		f, err := ingest.Detect([]byte(sample))
		if err == nil || !errors.Is(err, ingest.ErrUnknownFormat) {
			t.Errorf("Detect(%q) = %q, %v; want an error", sample, f, err)
		}
	}
	_, err := ingest.Detect([]byte("hello\n"))
	if want := "cannot detect the log format from its first lines: give one of vigil, nginx, nginx-json, envoy, apigateway, cloudtrail, github"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
