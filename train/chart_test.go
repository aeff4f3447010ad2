package train

import (
	"strings"
	"testing"
)

func TestLossChartSVG(t *testing.T) {
	for _, tc := range []struct {
		name    string
		curve   []Point
		heldOut float64
		want    []string
	}{
		{"empty", nil, 0, []string{"no steps"}},
		{"two steps", []Point{{0, 3}, {10, 1}}, 0, []string{`points="56.0,56.0 624.0,340.0"`, ">3.00<", ">1.00<", ">10<"}},
		{"held-out line", []Point{{0, 3}, {10, 1}}, 2, []string{`y1="198.0" y2="198.0" stroke="#d62728"`, "held-out 2.000 (perplexity 7.39)"}},
		{"escaped title", []Point{{1, 1}}, 0, []string{"a &lt;b&gt;"}},
	} {
		title := "run"
		if tc.name == "escaped title" {
			title = "a <b>"
		}
		svg := string(LossChartSVG(title, tc.curve, tc.heldOut))
		if !strings.HasPrefix(svg, "<svg ") || !strings.HasSuffix(svg, "</svg>\n") {
			t.Errorf("%s: not a standalone svg: %.80s", tc.name, svg)
		}
		for _, w := range tc.want {
			if !strings.Contains(svg, w) {
				t.Errorf("%s: lacks %q:\n%s", tc.name, w, svg)
			}
		}
		if again := string(LossChartSVG(title, tc.curve, tc.heldOut)); again != svg {
			t.Errorf("%s: not deterministic", tc.name)
		}
	}
}
