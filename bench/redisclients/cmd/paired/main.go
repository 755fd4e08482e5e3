// Command paired summarises run.sh output (results/raw.txt) as medians per
// client and as paired ratios: run.sh runs the clients of a case back to
// back in every round, so the k-th result of one client and the k-th result
// of the other saw nearly the same machine load; the median of the per-round
// ratios is more robust on a noisy machine than the ratio of medians.
//
//	go run ./cmd/paired results/raw.txt
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

type result map[string]float64 // unit -> value

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: paired raw.txt")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runs := map[string][]result{} // "GoRedis/batch=1" -> one result per round
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || !strings.HasPrefix(fs[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(fs[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // GOMAXPROCS suffix
		}
		r := result{}
		for i := 2; i+1 < len(fs); i += 2 {
			v, err := strconv.ParseFloat(fs[i], 64)
			if err == nil {
				r[fs[i+1]] = v
			}
		}
		runs[name] = append(runs[name], r)
	}
	pairs := []struct{ a, b string }{
		{"GoRedis/batch=1", "Rueidis/batch=1"},
		{"GoRedis/batch=16", "Rueidis/batch=16"},
		{"GoRedis/batch=256", "Rueidis/batch=256"},
		{"GoRedisPeer/batch=1", "RueidisPeer/batch=1"},
		{"GoRedisPeer/batch=16", "RueidisPeer/batch=16"},
		{"GoRedisConcurrent/goroutines=4/batch=64", "RueidisConcurrent/goroutines=4/batch=64"},
		{"Rueidis/batch=1", "RueidisLuaExecMulti/batch=1"},
		{"Rueidis/batch=16", "RueidisLuaExecMulti/batch=16"},
		{"Rueidis/batch=256", "RueidisLuaExecMulti/batch=256"},
	}
	units := []string{"events/s", "ns/event", "p50-us", "p99-us", "cli-cpu-us/event", "srv-cpu-us/event", "allocs/event", "B/event"}
	fmt.Println("| case | metric | A median | B median | B/A (median of per-round ratios) | B better in |")
	fmt.Println("|---|---|---:|---:|---:|---:|")
	for _, p := range pairs {
		ra, rb := runs[p.a], runs[p.b]
		n := min(len(ra), len(rb))
		if n == 0 {
			continue
		}
		for _, u := range units {
			var va, vb, ratio []float64
			wins := 0
			for k := range n {
				a, okA := ra[k][u]
				b, okB := rb[k][u]
				if !okA || !okB {
					continue
				}
				va, vb = append(va, a), append(vb, b)
				if a != 0 {
					ratio = append(ratio, b/a)
				}
				if (u == "events/s" && b > a) || (u != "events/s" && b < a) {
					wins++
				}
			}
			if len(va) == 0 {
				continue
			}
			fmt.Printf("| A=%s B=%s | %s | %s | %s | %.3f | %d/%d |\n", p.a, p.b, u, num(median(va)), num(median(vb)), median(ratio), wins, len(va))
		}
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}
