package ingest_test

import (
	"io"
	"os"
	"testing"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/ingest"
)

// BenchmarkDecode decodes each format's sample lines on one goroutine, as
// one replay worker does, and reports lines per second.
//
//	go test ./ingest -run '^$' -bench Decode -benchtime 200000x
func BenchmarkDecode(b *testing.B) {
	for _, sf := range sampleFiles {
		lines := readLines(b, sf.file, sf.format)
		if sf.format == ingest.CloudTrail {
			// Records of the realistic size as well (about 1.5 KB).
			lines = append(lines, []byte(cloudTrailRecord))
		}
		b.Run("format="+string(sf.format), func(b *testing.B) {
			benchDecode(b, sf.format, lines)
		})
	}
	b.Run("format=cloudtrail-1.5KB", func(b *testing.B) {
		benchDecode(b, ingest.CloudTrail, [][]byte{[]byte(cloudTrailRecord)})
	})
}

func benchDecode(b *testing.B, format ingest.Format, lines [][]byte) {
	d := newDecoder(b, format)
	total := 0
	for _, l := range lines {
		total += len(l)
	}
	b.SetBytes(int64(total / len(lines)))
	b.ReportAllocs()
	buf := make([]byte, 0, 64<<10)
	var ev event.Event
	i := 0
	for b.Loop() {
		// A copy, as replay's batches hold one (and Decode may wipe).
		buf = append(buf[:0], lines[i]...)
		if err := d.Decode(buf, &ev); err != nil && format != ingest.NginxCombined {
			b.Fatal(err) // the real Apache log has one truncated line
		}
		if i++; i == len(lines) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkApacheFull decodes the whole real log of shared/data (10,000
// lines, one bad), one line an iteration, when it is there.
func BenchmarkApacheFull(b *testing.B) {
	const path = "../../shared/data/apache_combined_2015.log"
	if _, err := os.Stat(path); err != nil {
		b.Skip("no", path)
	}
	benchDecode(b, ingest.NginxCombined, readLines(b, path, ingest.NginxCombined))
}

// BenchmarkLines streams a CloudTrail document of b.N realistic records
// (about 1.5 KB each) into lines.
func BenchmarkLines(b *testing.B) {
	src := &recordsSource{size: b.N * len(cloudTrailRecord)}
	r := ingest.Lines(src, ingest.CloudTrail)
	b.SetBytes(int64(len(cloudTrailRecord)))
	b.ReportAllocs()
	b.ResetTimer()
	buf := make([]byte, 1<<20)
	for {
		if _, err := r.Read(buf); err == io.EOF {
			break
		} else if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(src.n)/b.Elapsed().Seconds(), "records/s")
}
