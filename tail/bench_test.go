package tail_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/tail"
)

// BenchmarkFollow measures throughput: a writer goroutine appends b.N
// lines of about 200 bytes, in writes of about 64 KiB, while the Reader
// reads them back (through 1 MiB reads, as replay does).
func BenchmarkFollow(b *testing.B) {
	path := filepath.Join(b.TempDir(), "app.log")
	appendTo(b, path, "")
	line := `{"timestamp":"2026-11-02T08:00:00.000Z","token_id":"tk_alice_0001","source_ip":"93.184.216.10","endpoint":"/v1/orders","status_code":200,"request_id":"a-000","method":"GET","latency_ms":40}` + "\n"
	perWrite := (64 << 10) / len(line)
	block := []byte(strings.Repeat(line, perWrite))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := tail.Follow(ctx, []string{path}, tail.Options{Poll: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()

	writeErr := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			writeErr <- err
			return
		}
		defer f.Close()
		for left := b.N; left > 0; left -= perWrite {
			if _, err := f.Write(block[:min(left, perWrite)*len(line)]); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	buf := make([]byte, 1<<20)
	for lines := 0; lines < b.N; {
		n, err := r.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		lines += bytes.Count(buf[:n], []byte{'\n'})
	}
	b.StopTimer()
	if err := <-writeErr; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
