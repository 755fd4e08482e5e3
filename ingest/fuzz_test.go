package ingest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/ingest"
)

// fuzzDecode checks that a format's decoder never panics and that every
// event it accepts passes vigil's own contract (checkEvent), the same
// whatever the line's buffer holds afterwards; errors are FieldError or
// SyntaxError.
func fuzzDecode(f *testing.F, format ingest.Format) {
	for _, sf := range sampleFiles {
		if sf.format == format {
			for i, l := range readLines(f, sf.file, format) {
				if i < 8 {
					f.Add(l)
				}
			}
		}
	}
	for _, tt := range decodeTests {
		if tt.format == format {
			f.Add([]byte(tt.line))
		}
	}
	for _, tt := range decodeErrorTests {
		if tt.format == format {
			f.Add([]byte(tt.line))
		}
	}
	d := newDecoder(f, format)
	f.Fuzz(func(t *testing.T, line []byte) {
		var ev event.Event
		buf := bytes.Clone(line)
		err := d.Decode(buf, &ev)
		if err != nil {
			var fe *event.FieldError
			var se *event.SyntaxError
			if !errors.As(err, &fe) && !errors.As(err, &se) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		want := render(&ev)
		for i := range buf {
			buf[i] = '"'
		}
		if got := render(&ev); got != want {
			t.Fatalf("the event changed with its line:\n got %s\nwant %s", got, want)
		}
		checkEvent(t, &ev)
	})
}

func FuzzDecodeNginx(f *testing.F)      { fuzzDecode(f, ingest.NginxCombined) }
func FuzzDecodeNginxJSON(f *testing.F)  { fuzzDecode(f, ingest.NginxJSON) }
func FuzzDecodeEnvoy(f *testing.F)      { fuzzDecode(f, ingest.Envoy) }
func FuzzDecodeAPIGateway(f *testing.F) { fuzzDecode(f, ingest.APIGateway) }
func FuzzDecodeCloudTrail(f *testing.F) { fuzzDecode(f, ingest.CloudTrail) }
func FuzzDecodeGitHub(f *testing.F)     { fuzzDecode(f, ingest.GitHub) }

// FuzzLines checks the Records streamer against a reference made of the
// same input read whole: for a Records document that is valid JSON, the
// lines are its records, compacted, and each is valid JSON; for any input,
// reading never fails or loops, one byte at a time or not, and gives the
// same bytes.
func FuzzLines(f *testing.F) {
	f.Add([]byte(`{"Records":[{"a":"b\"]}"},{"c":[1,2,{"d":null}]}]}`))
	f.Add([]byte("{\n \"Records\" : [ {\"a\" : 1} ,\n {\"b\":2} ] }\n{\"Records\":[]}"))
	f.Add([]byte(`{"Records":[1,"x",[]],"Other":{"y":"]"}}{"Records":[{}]}`))
	f.Add([]byte(`{"eventTime":"x"}` + "\n"))
	f.Add([]byte(`{"Records":[{"a":"\\"},`))
	if b, err := os.ReadFile("testdata/cloudtrail.json"); err == nil {
		f.Add(b[:min(len(b), 4096)])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole, err := io.ReadAll(ingest.Lines(bytes.NewReader(in), ingest.CloudTrail))
		if err != nil {
			t.Fatal(err)
		}
		bytewise, err := io.ReadAll(ingest.Lines(iotest.OneByteReader(bytes.NewReader(in)), ingest.CloudTrail))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(whole, bytewise) {
			t.Fatalf("read whole %q, one byte at a time %q", whole, bytewise)
		}
		if len(whole) > len(in)+len(in)/2+1 {
			t.Fatalf("%d bytes out of %d", len(whole), len(in))
		}
		want, ok := refRecords(in)
		if !ok {
			return
		}
		got := splitLines(t, bytes.NewReader(whole))
		if len(got) != len(want) {
			t.Fatalf("%d lines, want %d records: %q", len(got), len(want), whole)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d: got %s, want %s", i, got[i], want[i])
			}
		}
	})
}

// refRecords returns the records of a valid {"Records":[…]} document, each
// compacted, using encoding/json.
func refRecords(in []byte) ([][]byte, bool) {
	var doc map[string]json.RawMessage
	if !json.Valid(in) || json.Unmarshal(in, &doc) != nil {
		return nil, false
	}
	trimmed := bytes.TrimLeft(in, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("{")) {
		return nil, false
	}
	trimmed = bytes.TrimLeft(trimmed[1:], " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte(`"Records"`)) {
		return nil, false
	}
	// One array of records (a duplicate key would make the last one win).
	if !bytes.HasPrefix(bytes.TrimLeft(doc["Records"], " \t\r\n"), []byte("[")) || bytes.Count(in, []byte(`"Records"`)) != 1 {
		return nil, false
	}
	var recs []json.RawMessage
	if json.Unmarshal(doc["Records"], &recs) != nil {
		return nil, false
	}
	out := make([][]byte, 0, len(recs))
	for _, r := range recs {
		var c bytes.Buffer
		if json.Compact(&c, r) != nil {
			return nil, false
		}
		if c.Len() > 0 && !strings.Contains(c.String(), "\n") {
			out = append(out, c.Bytes())
		}
	}
	return out, true
}

// FuzzDetect: Detect never panics, names a format NewDecoder knows, or
// fails with ErrUnknownFormat.
func FuzzDetect(f *testing.F) {
	for _, sf := range sampleFiles {
		if b, err := os.ReadFile(sf.file); err == nil {
			f.Add(b[:min(len(b), 2048)])
		}
	}
	f.Add([]byte("\n\n{\"Records\":["))
	f.Add([]byte("\ufeff{\"action\":\"x\",\"actor\":\"y\"}"))
	f.Fuzz(func(t *testing.T, sample []byte) {
		format, err := ingest.Detect(sample)
		if err != nil {
			if !errors.Is(err, ingest.ErrUnknownFormat) {
				t.Fatalf("error %v does not wrap ErrUnknownFormat", err)
			}
			return
		}
		if _, err := ingest.NewDecoder(format, nil); err != nil {
			t.Fatalf("detected %q: %v", format, err)
		}
	})
}
