package gateway

import (
	"strings"
	"testing"
)

func TestNewRefusesNegativeChannelLifetime(t *testing.T) {
	_, err := New(Config{ChainRPC: "tcp://127.0.0.1:1", Listen: "127.0.0.1:0", ChannelBlocks: -5}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "channel lifetime -5 blocks") {
		t.Fatalf("New with ChannelBlocks -5: err = %v; want a channel lifetime error", err)
	}
}
