package types

import (
	"errors"
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"
)

// Description is what an indexer can show of a message without state: its
// fields as display strings, in a fixed order, and the accounts it touches
// besides its signer.
type Description struct {
	Fields  [][2]string
	Touches []Address
}

// MsgSpec declares one tx message: its name (used for sign-time lookups,
// gas, events and metrics), how it sits in TxBody's oneof, its stateless
// validation and its description for indexers. Execution is declared by the
// state machine's modules (chain/app), keyed by the same name.
type MsgSpec struct {
	Name string

	msgType  reflect.Type // the message struct pointer, e.g. *MsgSend
	oneof    reflect.Type // TxBody's oneof wrapper, e.g. *TxBody_Send; nil for a module message
	wrap     func(proto.Message) (isTxBody_Msg, error)
	unwrap   func(isTxBody_Msg) (proto.Message, error)
	validate func(proto.Message) error
	describe func(proto.Message) Description

	// DefaultGas is the message's gas in DefaultParams (a genesis sets the
	// chain's own in params.gas by name).
	DefaultGas uint64
}

// WithGas returns the declaration with its default gas.
func (s MsgSpec) WithGas(gas uint64) MsgSpec {
	s.DefaultGas = gas
	return s
}

// DeclareMsg declares a message that has its own member of TxBody's oneof.
// validate and describe receive the message as carried, which may be nil
// when the oneof member was sent empty; describe may be nil.
func DeclareMsg[M proto.Message, W isTxBody_Msg](name string, wrap func(M) W, unwrap func(W) M,
	validate func(M) error, describe func(M) Description) MsgSpec {
	var m M
	var w W
	return MsgSpec{
		Name:    name,
		msgType: reflect.TypeOf(m),
		oneof:   reflect.TypeOf(w),
		wrap:    func(x proto.Message) (isTxBody_Msg, error) { return wrap(x.(M)), nil },
		unwrap:  func(x isTxBody_Msg) (proto.Message, error) { return unwrap(x.(W)), nil },
		validate: func(x proto.Message) error {
			return validate(x.(M))
		},
		describe: describeWith(describe),
	}
}

// DeclareModuleMsg declares a message carried in TxBody's generic module_msg
// member under type_url = name, so a module can add messages without a new
// oneof member. newMsg returns an empty message to decode into.
func DeclareModuleMsg[M proto.Message](name string, newMsg func() M, validate func(M) error, describe func(M) Description) MsgSpec {
	return MsgSpec{
		Name:    name,
		msgType: reflect.TypeOf(newMsg()),
		wrap: func(x proto.Message) (isTxBody_Msg, error) {
			bz, err := proto.MarshalOptions{Deterministic: true}.Marshal(x)
			if err != nil {
				return nil, fmt.Errorf("%s: encode: %w", name, err)
			}
			return &TxBody_ModuleMsg{ModuleMsg: &ModuleMsg{TypeUrl: name, Value: bz}}, nil
		},
		unwrap: func(x isTxBody_Msg) (proto.Message, error) {
			m := newMsg()
			if err := proto.Unmarshal(x.(*TxBody_ModuleMsg).ModuleMsg.GetValue(), m); err != nil {
				return nil, fmt.Errorf("%s: malformed message: %w", name, err)
			}
			return m, nil
		},
		validate: func(x proto.Message) error { return validate(x.(M)) },
		describe: describeWith(describe),
	}
}

func describeWith[M proto.Message](describe func(M) Description) func(proto.Message) Description {
	if describe == nil {
		return func(proto.Message) Description { return Description{} }
	}
	return func(x proto.Message) Description { return describe(x.(M)) }
}

// Validate runs the message's stateless checks.
func (s MsgSpec) Validate(m proto.Message) error { return s.validate(m) }

// Describe returns the message's fields and touched accounts for indexers.
func (s MsgSpec) Describe(m proto.Message) Description { return s.describe(m) }

// MsgRegistry is an immutable set of message declarations, looked up by
// name, by TxBody oneof member and by message type.
type MsgRegistry struct {
	specs   []MsgSpec
	byName  map[string]int
	byOneof map[reflect.Type]int
	byType  map[reflect.Type]int
}

var moduleOneof = reflect.TypeOf((*TxBody_ModuleMsg)(nil))

// NewMsgRegistry builds a registry of specs. Names and message types must
// be unique; a oneof member may be declared once.
func NewMsgRegistry(specs ...MsgSpec) (*MsgRegistry, error) {
	r := &MsgRegistry{byName: map[string]int{}, byOneof: map[reflect.Type]int{}, byType: map[reflect.Type]int{}}
	for i, s := range specs {
		switch {
		case s.Name == "" || s.wrap == nil:
			return nil, fmt.Errorf("message spec %d: not declared with DeclareMsg or DeclareModuleMsg", i)
		case r.has(s.Name):
			return nil, fmt.Errorf("message %q declared twice", s.Name)
		}
		if _, dup := r.byType[s.msgType]; dup {
			return nil, fmt.Errorf("message %q: type %v already declared as %q", s.Name, s.msgType, specs[r.byType[s.msgType]].Name)
		}
		if s.oneof != nil {
			if _, dup := r.byOneof[s.oneof]; dup {
				return nil, fmt.Errorf("message %q: oneof member %v already declared", s.Name, s.oneof)
			}
			r.byOneof[s.oneof] = i
		}
		r.byName[s.Name] = i
		r.byType[s.msgType] = i
	}
	r.specs = append([]MsgSpec(nil), specs...)
	return r, nil
}

func (r *MsgRegistry) has(name string) bool { _, ok := r.byName[name]; return ok }

// With returns a new registry holding r's messages followed by specs.
func (r *MsgRegistry) With(specs ...MsgSpec) (*MsgRegistry, error) {
	return NewMsgRegistry(append(append([]MsgSpec(nil), r.specs...), specs...)...)
}

// Names lists the declared message names in declaration order.
func (r *MsgRegistry) Names() []string {
	out := make([]string, len(r.specs))
	for i, s := range r.specs {
		out[i] = s.Name
	}
	return out
}

// DefaultGas maps each declared message's name to its declared default
// gas (the gas table of DefaultParams).
func (r *MsgRegistry) DefaultGas() map[string]uint64 {
	out := make(map[string]uint64, len(r.specs))
	for _, s := range r.specs {
		out[s.Name] = s.DefaultGas
	}
	return out
}

// Lookup finds a message declaration by name.
func (r *MsgRegistry) Lookup(name string) (MsgSpec, bool) {
	i, ok := r.byName[name]
	if !ok {
		return MsgSpec{}, false
	}
	return r.specs[i], true
}

// Open finds the declaration of the message body carries and returns it
// with the message, decoded from a module_msg when it is one.
func (r *MsgRegistry) Open(body *TxBody) (MsgSpec, proto.Message, error) {
	s, m, err := r.open(body)
	if err != nil {
		return MsgSpec{}, nil, err
	}
	return *s, m, nil
}

func (r *MsgRegistry) open(body *TxBody) (*MsgSpec, proto.Message, error) {
	if body.Msg == nil {
		return nil, nil, errors.New("tx body has no message")
	}
	t := reflect.TypeOf(body.Msg)
	i, ok := r.byOneof[t]
	if t == moduleOneof {
		url := body.GetModuleMsg().GetTypeUrl()
		if i, ok = r.byName[url]; !ok || r.specs[i].oneof != nil {
			return nil, nil, fmt.Errorf("unknown module message %q", url)
		}
	}
	if !ok {
		return nil, nil, errors.New("unknown message type")
	}
	m, err := r.specs[i].unwrap(body.Msg)
	if err != nil {
		return nil, nil, err
	}
	return &r.specs[i], m, nil
}

// Name returns the name of body's message, or "unknown".
func (r *MsgRegistry) Name(body *TxBody) string {
	if body.Msg == nil {
		return "unknown"
	}
	if i, ok := r.byOneof[reflect.TypeOf(body.Msg)]; ok {
		return r.specs[i].Name
	}
	if i, ok := r.byName[body.GetModuleMsg().GetTypeUrl()]; ok && r.specs[i].oneof == nil {
		return r.specs[i].Name
	}
	return "unknown"
}

// Validate performs the checks on a tx body that need no state.
func (r *MsgRegistry) Validate(body *TxBody) error {
	_, _, err := r.validate(body)
	return err
}

func (r *MsgRegistry) validate(body *TxBody) (*MsgSpec, proto.Message, error) {
	if body.ChainId == "" || len(body.ChainId) > 64 {
		return nil, nil, errors.New("chain id missing or longer than 64 bytes")
	}
	if len(body.Memo) > MaxMemoLen {
		return nil, nil, fmt.Errorf("memo longer than %d bytes", MaxMemoLen)
	}
	s, m, err := r.open(body)
	if err != nil {
		return nil, nil, err
	}
	if err := s.validate(m); err != nil {
		return nil, nil, err
	}
	return s, m, nil
}

// Set puts a message struct (*MsgSend, or a module's message) into the tx
// body's oneof and validates the result.
func (r *MsgRegistry) Set(body *TxBody, msg proto.Message) error {
	i, ok := r.byType[reflect.TypeOf(msg)]
	if !ok {
		return fmt.Errorf("unsupported message type %T", msg)
	}
	w, err := r.specs[i].wrap(msg)
	if err != nil {
		return err
	}
	body.Msg = w
	return r.Validate(body)
}

// Describe names body's message and describes it for indexers.
func (r *MsgRegistry) Describe(body *TxBody) (string, Description, error) {
	s, m, err := r.Open(body)
	if err != nil {
		return "unknown", Description{}, err
	}
	return s.Name, s.describe(m), nil
}
