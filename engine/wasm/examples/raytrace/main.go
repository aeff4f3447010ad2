//go:build wasip1

// Command raytrace is an example compute job (the job ABI): it renders a
// small scene of spheres with shadows and reflections, a few rows per step,
// and writes the image as a PNG to /out/render.png when done. Arguments: width
// height rows-per-step (default 160 120 8).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o raytrace.wasm .
package main

import (
	"bufio"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"
)

type vec struct{ x, y, z float64 }

func (a vec) add(b vec) vec      { return vec{a.x + b.x, a.y + b.y, a.z + b.z} }
func (a vec) sub(b vec) vec      { return vec{a.x - b.x, a.y - b.y, a.z - b.z} }
func (a vec) mul(s float64) vec  { return vec{a.x * s, a.y * s, a.z * s} }
func (a vec) dot(b vec) float64  { return a.x*b.x + a.y*b.y + a.z*b.z }
func (a vec) norm() vec          { return a.mul(1 / math.Sqrt(a.dot(a))) }
func (a vec) hadamard(b vec) vec { return vec{a.x * b.x, a.y * b.y, a.z * b.z} }

type sphere struct {
	c      vec
	r      float64
	col    vec
	mirror float64
}

var scene = []sphere{
	{vec{0, -1000, 0}, 999, vec{0.8, 0.8, 0.7}, 0.1},
	{vec{-1.2, 0, 4}, 1, vec{0.9, 0.2, 0.2}, 0.3},
	{vec{1.3, 0.2, 5}, 1.2, vec{0.2, 0.4, 0.9}, 0.6},
	{vec{0.1, -0.6, 2.8}, 0.4, vec{0.2, 0.9, 0.3}, 0.0},
}

var light = vec{-3, 5, -1}

func hit(o, d vec) (int, float64) {
	best, bt := -1, math.Inf(1)
	for i, s := range scene {
		oc := o.sub(s.c)
		b := oc.dot(d)
		c := oc.dot(oc) - s.r*s.r
		disc := b*b - c
		if disc < 0 {
			continue
		}
		t := -b - math.Sqrt(disc)
		if t > 1e-6 && t < bt {
			best, bt = i, t
		}
	}
	return best, bt
}

func trace(o, d vec, depth int) vec {
	i, t := hit(o, d)
	if i < 0 {
		k := 0.5 * (d.y + 1)
		return vec{1, 1, 1}.mul(1 - k).add(vec{0.5, 0.7, 1}.mul(k))
	}
	s := scene[i]
	p := o.add(d.mul(t))
	n := p.sub(s.c).norm()
	l := light.sub(p).norm()
	diff := math.Max(0, n.dot(l))
	if j, _ := hit(p, l); j >= 0 {
		diff *= 0.3
	}
	col := s.col.mul(0.1 + 0.9*diff)
	if s.mirror > 0 && depth < 4 {
		r := d.sub(n.mul(2 * d.dot(n)))
		col = col.mul(1 - s.mirror).add(trace(p, r, depth+1).hadamard(s.col).mul(s.mirror))
	}
	return col
}

var (
	w, h, perStep = 160, 120, 8
	img           *image.NRGBA
	row           int
)

func arg(i, def int) int {
	if len(os.Args) > i {
		if v, err := strconv.Atoi(os.Args[i]); err == nil && v > 0 {
			return v
		}
	}
	return def
}

//go:wasmexport init
func jobInit() {
	w, h, perStep = arg(1, w), arg(2, h), arg(3, perStep)
	img = image.NewNRGBA(image.Rect(0, 0, w, h))
}

//go:wasmexport step
func jobStep() int32 {
	for end := min(row+perStep, h); row < end; row++ {
		for x := 0; x < w; x++ {
			d := vec{(float64(x) - float64(w)/2) / float64(h), (float64(h)/2 - float64(row)) / float64(h), 1}.norm()
			c := trace(vec{0, 0.3, -1}, d, 0)
			img.SetNRGBA(x, row, color.NRGBA{byte(255 * math.Min(1, c.x)), byte(255 * math.Min(1, c.y)), byte(255 * math.Min(1, c.z)), 255})
		}
	}
	if row < h {
		return 1
	}
	f, err := os.Create("/out/render.png")
	if err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(1)
	}
	bw := bufio.NewWriter(f)
	if err := png.Encode(bw, img); err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(1)
	}
	if err := bw.Flush(); err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(1)
	}
	f.Close()
	os.Stdout.WriteString("rendered /out/render.png " + strconv.Itoa(w) + "x" + strconv.Itoa(h) + "\n")
	return 0
}

func main() {}
