package grpcserver

import (
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/engram-ops/engram-ops/ops/server"
)

// codec is the proto codec, except that a message that does not decode is
// refused with InvalidArgument INVALID_MESSAGE (REST answers a body that
// does not parse with a 400), not grpc-go's Internal. grpc-go turns any
// error of Unmarshal into Internal, so Unmarshal records the failure
// against the message it was given and reports success; the interceptors
// look the message up (failed) before anything reads it.
type codec struct {
	encoding.CodecV2
	bad sync.Map // message → decoding error
}

func newCodec() *codec { return &codec{CodecV2: encoding.GetCodecV2("proto")} }

func (c *codec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.CodecV2.Unmarshal(data, v); err != nil {
		if m, ok := v.(proto.Message); ok {
			proto.Reset(m)
		}
		c.bad.Store(v, err)
	}
	return nil
}

// failed is the answer to a message that did not decode, or nil.
func (c *codec) failed(v any) error {
	e, ok := c.bad.LoadAndDelete(v)
	if !ok {
		return nil
	}
	name := "request"
	if m, ok := v.(proto.Message); ok {
		name = string(m.ProtoReflect().Descriptor().FullName())
	}
	return server.InvalidArgument("INVALID_MESSAGE", "the request is not a valid %s message: %v", name, e)
}
