package provider

import (
	"context"
	"encoding/hex"
	"net/http"
	"time"

	json "github.com/goccy/go-json"

	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/receipt"
)

// FinishCancelled is the finish reason of a generation cut short because its
// request was cancelled (the client went away, or the provider is stopping):
// the output is a prefix of what the model would have generated, billed and
// recorded as such.
const FinishCancelled = "cancelled"

// requestKeep is how long a finished stream's receipt stays findable by its
// request id: the gateway asks at once, so a minute is plenty.
const requestKeep = time.Minute

// requestWait bounds how long GET /v1/requests/{id}/receipt waits for a
// request still being generated or recorded.
const requestWait = 30 * time.Second

// tracked is a stream in flight or recently finished, by request id.
type tracked struct {
	done chan struct{} // closed once the request ended
	enc  string        // its encoded receipt; "" if it ended without one
}

// trackRequest registers a stream's request id (none: nil, and finish is a
// no-op). An id already in use is refused: it would let one request's
// receipt be taken for another's.
func (p *Provider) trackRequest(id string) (*tracked, *oai.Error) {
	if id == "" {
		return nil, nil
	}
	if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
		return nil, oai.Errorf(http.StatusBadRequest, "invalid_request_error", inference.RequestIDHeader, "%s must be 32 hex digits", inference.RequestIDHeader)
	}
	t := &tracked{done: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.requests == nil {
		p.requests = map[string]*tracked{}
	}
	if _, dup := p.requests[id]; dup {
		return nil, oai.Errorf(http.StatusConflict, "invalid_request_error", inference.RequestIDHeader, "request id %s is already in use", id)
	}
	p.requests[id] = t
	return t, nil
}

// finish records how a tracked request ended and forgets it after
// requestKeep.
func (p *Provider) finish(id string, t *tracked, sr *receipt.Signed) {
	if t == nil {
		return
	}
	if sr != nil {
		t.enc = sr.Encode()
	}
	close(t.done)
	time.AfterFunc(requestKeep, func() {
		p.mu.Lock()
		delete(p.requests, id)
		p.mu.Unlock()
	})
}

// handleRequestReceipt answers GET /v1/requests/{id}/receipt: the receipt
// of a stream that did not end cleanly, waiting (bounded) for it to be
// recorded if the request is still running.
func (p *Provider) handleRequestReceipt(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p.mu.Lock()
	t := p.requests[id]
	p.mu.Unlock()
	if t == nil {
		oai.Errorf(http.StatusNotFound, "invalid_request_error", "id", "no request %q here (unknown, or ended over %v ago)", id, requestKeep).Write(w)
		return
	}
	timer := time.NewTimer(requestWait)
	defer timer.Stop()
	select {
	case <-t.done:
	case <-timer.C:
		oai.Errorf(http.StatusGatewayTimeout, "api_error", "", "request %s still running after %v", id, requestWait).Write(w)
		return
	case <-r.Context().Done():
		return
	}
	if t.enc == "" {
		oai.Errorf(http.StatusNotFound, "invalid_request_error", "id", "request %s ended without a receipt (nothing generated, or it could not be stored)", id).Write(w)
		return
	}
	w.Header().Set(inference.ReceiptHeader, t.enc)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"receipt": t.enc})
}

// requestContext is the context a generation runs under: the request's,
// also cancelled when a stop's drain runs out (cutRequests), so the
// generation ends early and bills what it generated.
func (p *Provider) requestContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(p.cut, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}
