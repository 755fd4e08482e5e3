package investigate

import (
	"bufio"
	_ "embed"
	"html/template"
	"io"
	"time"

	"github.com/vigil-sec/vigil/policy"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlReport is parsed once; html/template escapes every value for the
// context it lands in (text, attribute, URL), so nothing from a log can
// become markup.
var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"count":  fmtCount,
	"bytes":  fmtBytes,
	"risk":   fmtRisk,
	"time":   fmtTime,
	"span":   func(a, b time.Time) string { return fmtSpan(b.Sub(a)) },
	"clean":  clean,
	"plural": plural,
	"level":  func(l int) string { return policy.Level(l).String() },
	"int":    func(l policy.Level) int { return int(l) },
	"int64":  func(n int) int64 { return int64(n) },
	"inc":    func(i int) int { return i + 1 },
	"chart":  func(c Credential, th policy.Ladder) chart { return newChart(&c, th) },
}).Parse(htmlSource))

// WriteHTML writes r as one self-contained HTML page: inline CSS, an
// inline SVG chart of risk over time per credential, no scripts and no
// external resources, so it can be mailed or attached to a ticket and
// opened anywhere. The page is also well-formed XML.
func WriteHTML(w io.Writer, r Report) error {
	bw := bufio.NewWriter(w)
	if err := htmlReport.Execute(bw, &r); err != nil {
		return err
	}
	return bw.Flush()
}
