package bench

import (
	"context"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// TestBadOptionsRefused: nonsensical bench options are refused with the
// flag named, before any work starts.
func TestBadOptionsRefused(t *testing.T) {
	for _, c := range []struct {
		o    ToleranceOptions
		want string
	}{
		{ToleranceOptions{Requests: 0, Attacks: 1}, "--requests"},
		{ToleranceOptions{Requests: 1, Attacks: 0}, "--attacks"},
		{ToleranceOptions{Requests: 1, Attacks: 1, Noise: []float64{0.01, -1}}, "--noise"},
		{ToleranceOptions{Requests: 1, Attacks: 1, Noise: []float64{math.NaN()}}, "--noise"},
	} {
		c.o.Out = io.Discard
		if _, err := RunTolerance(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.o, err, c.want)
		}
	}
	ok := GatewayOptions{Duration: time.Second, Conns: []int{1}, Out: io.Discard}
	for _, c := range []struct {
		edit func(*GatewayOptions)
		want string
	}{
		{func(o *GatewayOptions) { o.Mode = "xml" }, "--mode"},
		{func(o *GatewayOptions) { o.Only = "everything" }, "--only"},
		{func(o *GatewayOptions) { o.Conns = []int{64, 0} }, "--conns"},
		{func(o *GatewayOptions) { o.Duration = 0 }, "--duration"},
		{func(o *GatewayOptions) { o.Rounds = -1 }, "--rounds"},
	} {
		o := ok
		c.edit(&o)
		if _, err := RunGateway(context.Background(), o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.want, err)
		}
	}
}

// TestGatewayPartRefusesBadOptions: the part a bench process starts names
// what is missing instead of failing on an empty address.
func TestGatewayPartRefusesBadOptions(t *testing.T) {
	for _, c := range []struct{ role, rpc, dir, backend, want string }{
		{"nope", "tcp://127.0.0.1:1", "/tmp", "", `unknown part "nope"`},
		{RoleProvider, "", "/tmp", "http://127.0.0.1:1/v1", "needs --chain-rpc and --dir"},
		{RoleGateway, "tcp://127.0.0.1:1", "", "", "needs --chain-rpc and --dir"},
		{RoleProvider, "tcp://127.0.0.1:1", "/tmp", "", "needs --backend"},
	} {
		err := RunGatewayPart(context.Background(), c.role, c.rpc, c.dir, c.backend, strings.NewReader(""), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
