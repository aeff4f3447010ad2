package train

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strings"
)

// Point is one step of a loss curve.
type Point struct {
	Step int
	Loss float64
}

// LossChartSVG draws a loss curve as a standalone SVG (no script, no
// external resource: it renders offline, in BENCHMARKS.md or a browser):
// the training loss per step, and, when heldOut > 0, the held-out loss as
// a horizontal line. The output is deterministic for the same input.
func LossChartSVG(title string, curve []Point, heldOut float64) []byte {
	const w, h, left, right, top, bottom = 640.0, 380.0, 56.0, 16.0, 56.0, 40.0
	pw, ph := w-left-right, h-top-bottom
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", int(w), int(h), int(w), int(h))
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	// the title on up to two lines, split at its first "; "
	t1, t2, _ := strings.Cut(title, "; ")
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="13">%s</text>`+"\n", left, html.EscapeString(t1))
	if t2 != "" {
		fmt.Fprintf(&b, `<text x="%.0f" y="34">%s</text>`+"\n", left, html.EscapeString(t2))
	}
	if len(curve) == 0 {
		b.WriteString(`<text x="56" y="60">no steps</text></svg>` + "\n")
		return b.Bytes()
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range curve {
		lo, hi = math.Min(lo, p.Loss), math.Max(hi, p.Loss)
	}
	if heldOut > 0 {
		lo, hi = math.Min(lo, heldOut), math.Max(hi, heldOut)
	}
	lo = math.Max(0, math.Floor(lo))
	hi = math.Ceil(hi)
	if hi <= lo {
		hi = lo + 1
	}
	first, last := curve[0].Step, curve[len(curve)-1].Step
	if last <= first {
		last = first + 1
	}
	x := func(step int) float64 { return left + pw*float64(step-first)/float64(last-first) }
	y := func(v float64) float64 { return top + ph*(1-(v-lo)/(hi-lo)) }
	// axes and ticks
	fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fH%.1f" fill="none" stroke="#444"/>`+"\n", left, top, top+ph, left+pw)
	for i := 0; i <= 4; i++ {
		v := lo + (hi-lo)*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%.2f</text>`+"\n",
			left, left+pw, y(v), y(v), left-6, y(v)+4, v)
		s := first + (last-first)*i/4
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x(s), top+ph+16, s)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">step</text>`+"\n", left+pw/2, h-6)
	fmt.Fprintf(&b, `<text x="14" y="%.1f" transform="rotate(-90 14 %.1f)" text-anchor="middle">loss (nats/token)</text>`+"\n", top+ph/2, top+ph/2)
	// the curve
	b.WriteString(`<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="`)
	for i, p := range curve {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", x(p.Step), y(p.Loss))
	}
	b.WriteString(`"/>` + "\n")
	// the legend, above the plot
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="46" y2="46" stroke="#1f77b4" stroke-width="1.5"/><text x="%.1f" y="50" fill="#1f77b4">training loss</text>`+"\n",
		left+pw-330, left+pw-310, left+pw-305)
	if heldOut > 0 {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="5 3"/>`+"\n", left, left+pw, y(heldOut), y(heldOut))
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="46" y2="46" stroke="#d62728" stroke-dasharray="5 3"/><text x="%.1f" y="50" fill="#d62728">held-out %.3f (perplexity %.2f)</text>`+"\n",
			left+pw-215, left+pw-195, left+pw-190, heldOut, math.Exp(heldOut))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// LossLog is a training job's loss curve, as the train example writes it
// to /out/loss.json (the explorer draws it on the job's page).
type LossLog struct {
	Preset string    `json:"preset"`
	Steps  int       `json:"steps"`
	Seed   uint64    `json:"seed"`
	Loss   []float64 `json:"loss"` // step i+1's mean training loss
}

// Chart draws the log's curve (LossChartSVG).
func (l LossLog) Chart(title string) []byte {
	pts := make([]Point, len(l.Loss))
	for i, v := range l.Loss {
		pts[i] = Point{Step: i + 1, Loss: v}
	}
	return LossChartSVG(title, pts, 0)
}
