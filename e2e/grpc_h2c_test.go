package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcBackend echoes unary calls, streams one message per response
// parameter and fails calls whose payload is "not found"; it sends the
// trailer x-trailer on every call.
type grpcBackend struct {
	testpb.UnimplementedTestServiceServer
}

func (grpcBackend) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "unary"))
	if string(req.GetPayload().GetBody()) == "not found" {
		return nil, status.Error(codes.NotFound, "no such thing")
	}
	if _, ok := ctx.Deadline(); !ok {
		return nil, status.Error(codes.InvalidArgument, "no deadline came through")
	}
	return &testpb.SimpleResponse{Payload: req.GetPayload()}, nil
}

func (grpcBackend) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	stream.SetTrailer(metadata.Pairs("x-trailer", "stream"))
	for i, rp := range req.GetResponseParameters() {
		body := []byte(fmt.Sprintf("%d:%s", i, strings.Repeat("x", int(rp.GetSize()))))
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	return nil
}

// startGRPCBackend serves grpcBackend in h2c (HTTP/2 with prior knowledge,
// grpc-go's own server) on 127.0.0.1.
func startGRPCBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, grpcBackend{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// A gRPC client talks cleartext HTTP/2 with prior knowledge (--h2c) to
// cutover, which passes unary and server-streaming calls to an h2c
// backend with their trailers, deadlines and errors.
func TestGRPCThroughH2C(t *testing.T) {
	addr := startGRPCBackend(t)
	in := start(t, fmt.Sprintf(`
services:
  grpc:
    host: grpc.test
    protocol: h2c
    backends: [%s]
`, addr), "--h2c")
	conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(in.http, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("grpc.test"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var trailer metadata.MD
	res, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}}, grpc.Trailer(&trailer))
	if err != nil {
		t.Fatalf("unary call: %v", err)
	}
	if string(res.GetPayload().GetBody()) != "hello" || strings.Join(trailer["x-trailer"], ",") != "unary" {
		t.Errorf("unary call: payload %q, trailers %v", res.GetPayload().GetBody(), trailer)
	}

	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("not found")}})
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such thing" {
		t.Errorf("failing call: %v, want NotFound \"no such thing\"", err)
	}

	const n = 20
	req := &testpb.StreamingOutputCallRequest{}
	for range n {
		req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: 1000})
	}
	stream, err := client.StreamingOutputCall(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if body := string(msg.GetPayload().GetBody()); !strings.HasPrefix(body, fmt.Sprintf("%d:", i)) {
			t.Fatalf("message %d: %.10q…", i, body)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
	if got := strings.Join(stream.Trailer()["x-trailer"], ","); got != "stream" {
		t.Errorf("stream trailers %v, want x-trailer: stream", stream.Trailer())
	}
	if got := metricValue(t, in, "cutover_requests_total", map[string]string{"service": "grpc", "code": "200", "method": "POST"}); got != 3 {
		t.Errorf("cutover_requests_total{service=grpc,code=200} = %v, want 3", got)
	}
}
