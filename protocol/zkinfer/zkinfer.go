// Package zkinfer is the wire protocol of proven inference: a client (the
// gateway, paying from a channel) asks a provider to run a registered zk
// model (chain/zk) on a batch of int8 inputs; the provider answers with the
// outputs, a Groth16 proof that the registered weights produced them, and
// its signature over the answer (chain/zk.AnswerBytes). The gateway pays
// for an answer only once its proof verifies against the model's
// registered verifying key and commitment; a signed answer whose proof does
// not verify is evidence the chain slashes the provider on
// (MsgReportZKFault).
//
// It is a leaf: roles import it, it imports no role.
package zkinfer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/agoranet/agora/chain/types"
)

// InferRoute is the provider's (and the gateway's) route, InferPath its path.
const (
	InferRoute = "POST /v1/zk/infer"
	InferPath  = "/v1/zk/infer"
)

// MaxRequestBytes bounds a request body: a batch of a few hundred int8
// vectors of a few thousand values, as JSON numbers.
const MaxRequestBytes = 4 << 20

// MaxAnswerBytes bounds an answer (the inputs echoed, the logits, a proof).
const MaxAnswerBytes = 16 << 20

// Request asks for proven inferences of a registered zk model. The gateway
// also takes the model by name and a publish flag (GatewayRequest).
type Request struct {
	Model  uint64   `json:"model"`  // registered zk model id
	Inputs [][]int8 `json:"inputs"` // 1..batch vectors of the model's input length
}

// GatewayRequest is what a client sends the gateway: the model by id or
// registered name; Publish asks the gateway to have the chain verify and
// record the proof too (its fee paid by the client's account), so that
// anyone can look the statement up later.
type GatewayRequest struct {
	Model   json.RawMessage `json:"model"` // a number (id) or a string (name or id)
	Inputs  [][]int8        `json:"inputs"`
	Publish bool            `json:"publish,omitempty"`
}

// Answer is a provider's proven answer. Inputs, Logits and Classes are the
// proof's whole statement: a full batch, the request's inputs first and the
// rest padding (copies of the last input), billed for Count inferences.
type Answer struct {
	Model     uint64         `json:"model"`
	Provider  types.Address  `json:"provider"`
	Count     int            `json:"count"`
	Inputs    [][]int8       `json:"inputs"`
	Logits    [][]int64      `json:"logits"`
	Classes   []uint32       `json:"classes"`
	Proof     types.HexBytes `json:"proof"`     // gnark's compressed Groth16 proof
	Statement types.HexBytes `json:"statement"` // chain/zk.StatementHash of the statement
	Signature types.HexBytes `json:"signature"` // the provider's ed25519 over chain/zk.AnswerBytes
	Amount    uint64         `json:"amount"`    // uagr billed: Count × the registered price
}

// GatewayAnswer is the gateway's response: the provider's answer, checked,
// and where it was published on chain when asked.
type GatewayAnswer struct {
	Answer
	Verified        bool   `json:"verified"`                   // the gateway checked the proof against the registered key
	PublishedHeight int64  `json:"published_height,omitempty"` // block whose tx verified and recorded it
	PublishedTx     string `json:"published_tx,omitempty"`     // empty when the statement was recorded by an earlier tx
	PublishError    string `json:"publish_error,omitempty"`    // publish asked and failed (the answer still verified and was paid)
}

// Flat is the statement as chain messages carry it: the inputs as bytes
// (two's complement), the logits and classes in order.
func (a *Answer) Flat() (inputs []byte, logits []int64, classes []uint32) {
	for _, x := range a.Inputs {
		for _, v := range x {
			inputs = append(inputs, byte(v))
		}
	}
	for _, l := range a.Logits {
		logits = append(logits, l...)
	}
	return inputs, logits, append([]uint32(nil), a.Classes...)
}

// CheckShape checks that a request fits a model of batch inferences of
// inLen inputs.
func CheckShape(inputs [][]int8, batch, inLen int) error {
	if len(inputs) == 0 {
		return errors.New("inputs: no input vector")
	}
	if len(inputs) > batch {
		return fmt.Errorf("inputs: %d vectors, the model proves at most %d per request (its batch)", len(inputs), batch)
	}
	for i, x := range inputs {
		if len(x) != inLen {
			return fmt.Errorf("inputs[%d]: %d values, the model takes %d", i, len(x), inLen)
		}
	}
	return nil
}

// Pad fills a request's inputs up to a full batch with copies of the last
// one (the circuit proves exactly batch inferences).
func Pad(inputs [][]int8, batch int) [][]int8 {
	out := append([][]int8(nil), inputs...)
	for len(out) < batch {
		out = append(out, inputs[len(inputs)-1])
	}
	return out
}

// DecodeStrict decodes one JSON value from r into v, refusing unknown
// fields and trailing data, reading at most limit bytes.
func DecodeStrict(r io.Reader, limit int64, v any) error {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("body over %d bytes", limit)
		}
		return fmt.Errorf("body: %w", err)
	}
	if dec.More() {
		return errors.New("body: data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("body: data after the JSON value")
	}
	return nil
}
