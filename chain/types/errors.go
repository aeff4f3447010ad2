package types

import (
	"errors"
	"fmt"
)

// Code is an ABCI result code. Each class of failure has its own code so
// clients can react without parsing the log text.
type Code uint32

const (
	CodeOK                Code = 0
	CodeMalformed         Code = 1  // bytes do not decode, or a field is out of shape
	CodeBadSignature      Code = 2  // signature does not verify
	CodeWrongChain        Code = 3  // tx signed for another chain id
	CodeBadNonce          Code = 4  // replayed or out-of-order nonce
	CodeInsufficientFunds Code = 5  // balance or bond too small
	CodeOverflow          Code = 6  // an amount would overflow 64 bits
	CodeFeeTooLow         Code = 7  // fee below the minimum for this tx
	CodeUnauthorized      Code = 8  // signer may not do this
	CodeNotFound          Code = 9  // referenced object does not exist
	CodeInvalid           Code = 10 // rejected by a state rule (see log)
	CodeVoucher           Code = 11 // voucher not redeemable
	CodeChannelClosed     Code = 12 // channel already closed
	CodeInternal          Code = 99
)

var codeNames = map[Code]string{
	CodeOK: "ok", CodeMalformed: "malformed", CodeBadSignature: "bad_signature",
	CodeWrongChain: "wrong_chain_id", CodeBadNonce: "bad_nonce",
	CodeInsufficientFunds: "insufficient_funds", CodeOverflow: "overflow",
	CodeFeeTooLow: "fee_too_low", CodeUnauthorized: "unauthorized",
	CodeNotFound: "not_found", CodeInvalid: "invalid", CodeVoucher: "bad_voucher",
	CodeChannelClosed: "channel_closed", CodeInternal: "internal",
}

func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code_%d", uint32(c))
}

// Error is a state-machine error carrying its ABCI code.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err: its *Error code, or CodeInternal.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AddU64 adds with overflow detection.
func AddU64(a, b uint64) (uint64, error) {
	s := a + b
	if s < a {
		return 0, Errorf(CodeOverflow, "amount overflow: %d + %d exceeds 2^64-1", a, b)
	}
	return s, nil
}

// MulDivU64 returns a*b/d without intermediate overflow, rounding down.
func MulDivU64(a, b, d uint64) uint64 {
	hi, lo := mul64(a, b)
	q, _ := div128(hi, lo, d)
	return q
}
