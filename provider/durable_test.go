//go:build linux

package provider

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/reqauth"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestReceiptOnlyOnceStored: a receipt leaves the provider only once it is
// durably stored. A receipt handed out before its synced write would be
// lost by a crash in between, the restarted provider would give its index
// to another receipt, and whoever held the first could report it omitted
// and have an honest provider slashed. So while the provider's receipt
// store is held, an idle provider — asked by the header older gateways sent
// for an early receipt — has sent the client no receipt (no receipt header,
// no 103, no receipt comment in a stream, whose tokens did arrive); once
// the store is released, the response carries it.
func TestReceiptOnlyOnceStored(t *testing.T) {
	nw := testnet.New(t, testnet.Options{Validators: 1, Accounts: 2, BlockTime: 150 * time.Millisecond})
	if err := nw.WaitHeight(0, 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny.gguf")
	if err := native.WriteRandomModel(model, native.GenOptions{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 600, Context: 256, Seed: 7, Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	b, err := NewNativeBackend([]string{model}, native.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	client, provKey := nw.Accounts[0], nw.Accounts[1]
	p, err := New(Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: provKey, Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "provider"),
		PriceIn: 1000, PriceOut: 2000, Concurrency: 1, Tick: 100 * time.Millisecond}, b, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	// Every receipt store waits for the test: entered tells it one began.
	entered, release := make(chan struct{}, 1), make(chan struct{})
	store := p.recorder.store
	p.recorder.store = func(g []*pendingRecord) error {
		entered <- struct{}{}
		<-release
		return store(g)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	res, err := nw.Client(0).NewSigner(client).Send(ctx, &types.MsgOpenChannel{Provider: p.Address(), Deposit: 1_000_000, ExpiryHeight: nw.Height(0) + 500})
	if err != nil {
		t.Fatal(err)
	}
	chID, err := strconv.ParseUint(res.Events["channel_id"], 10, 64)
	if err != nil {
		t.Fatalf("channel id %q: %v", res.Events["channel_id"], err)
	}
	authKey, err := reqauth.ClientKey(client, provKey.Public().(ed25519.PublicKey), nw.ChainID, chID)
	if err != nil {
		t.Fatal(err)
	}
	const path = "/v1/chat/completions"
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "json", true: "stream"}[stream]
		body := fmt.Sprintf(`{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":%v}`, stream)
		billed := p.Billed(chID)
		voucher := payment.FormatVoucher(types.SignVoucher(client, nw.ChainID, chID, billed))
		conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Written by hand so that nothing reads the connection but the test.
		req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: provider\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n"+
			"%s: %s\r\n%s: %s\r\nX-Agora-Early-Receipt: 1\r\n\r\n%s",
			path, len(body), payment.VoucherHeader, voucher, reqauth.Header, reqauth.Sign(&authKey, chID, time.Now(), http.MethodPost, path, []byte(body), voucher), body)
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		<-entered
		// The request's receipt is signed and being stored: all the provider
		// wrote before is in the connection's receive queue (loopback), seen
		// without consuming it.
		sent := peek(t, conn)
		if bytes.Contains(bytes.ToLower(sent), []byte(strings.ToLower(inference.ReceiptHeader))) || bytes.Contains(sent, []byte(inference.ReceiptComment)) ||
			bytes.Contains(sent, []byte(" 103 ")) {
			t.Fatalf("%s: the receipt reached the client before it was stored:\n%s", name, sent)
		}
		if stream && !bytes.Contains(sent, []byte("data: {")) {
			t.Fatalf("%s: the stream's tokens did not reach the client before its receipt was stored (so nothing was observed):\n%q", name, sent)
		}
		release <- struct{}{}
		all, err := io.ReadAll(conn)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(bytes.NewReader(all))
		resp, err := http.ReadResponse(br, nil)
		for err == nil && resp.StatusCode < 200 { // (none now: see above)
			resp, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, all)
		}
		rb, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v\n%s", name, resp.StatusCode, err, rb)
		}
		enc := resp.Header.Get(inference.ReceiptHeader)
		if stream {
			if enc != "" {
				t.Fatalf("stream: receipt header %q", enc)
			}
			for line := range strings.Lines(string(rb)) {
				if s, ok := strings.CutPrefix(line, inference.ReceiptComment); ok {
					enc = strings.TrimSpace(s)
				}
			}
			if !strings.HasSuffix(string(rb), "data: [DONE]\n\n") {
				t.Fatalf("stream: not ended by [DONE]:\n%s", rb)
			}
		}
		sr, err := receipt.Decode(enc)
		if err != nil {
			t.Fatalf("%s: receipt %q: %v", name, enc, err)
		}
		if err := sr.Verify(provKey.Public().(ed25519.PublicKey)); err != nil || sr.Receipt.ChannelId != chID || sr.Receipt.Amount == 0 ||
			p.Billed(chID) != billed+sr.Receipt.Amount {
			t.Fatalf("%s: receipt %+v (%v); billed %d, was %d", name, sr.Receipt, err, p.Billed(chID), billed)
		}
	}
}

// peek returns the bytes waiting in conn's receive queue, leaving them
// there.
func peek(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	n := 0
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if rerr == syscall.EAGAIN {
		return nil
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
	return buf[:n]
}
