package proxy

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// refusingConn is a connection whose writes fail, as a client's does once
// the send timeout has cut it off.
type refusingConn struct{ net.Conn }

func (refusingConn) Write([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }

// A tunnel ends on the side whose write failed: a client that stopped
// reading is the client's doing, not the backend's, though the backend's
// bytes are what could not go out.
func TestTunnelEndsOnTheSideThatCannotBeWritten(t *testing.T) {
	frame := []byte{0x82, 3, 'a', 'b', 'c'}
	for _, ws := range []bool{false, true} {
		for _, tc := range []struct {
			refusing string // the side whose writes fail
			want     closeReason
		}{{"client", closedClient}, {"backend", closedBackend}} {
			t.Run(fmt.Sprintf("ws=%v/%s", ws, tc.refusing), func(t *testing.T) {
				client, clientPeer := net.Pipe()
				back, backPeer := net.Pipe()
				defer clientPeer.Close()
				defer backPeer.Close()
				sender := backPeer // the other side sends
				if tc.refusing == "client" {
					client = refusingConn{client}
				} else {
					back = refusingConn{back}
					sender = clientPeer
				}
				tn := newTunnel(&Backend{}, client, bufio.NewReader(client), back, ws)
				res := make(chan closeReason, 1)
				go func() { res <- tn.run(time.Minute, time.Second, nil) }()
				sender.SetWriteDeadline(time.Now().Add(testTimeout))
				if _, err := sender.Write(frame); err != nil {
					t.Fatalf("the peer of the side that can be written could not send: %v", err)
				}
				select {
				case r := <-res:
					if r != tc.want {
						t.Fatalf("the tunnel ended by %s, want %s", closeReasons[r], closeReasons[tc.want])
					}
				case <-time.After(testTimeout):
					t.Fatal("the tunnel did not end after a write failed")
				}
			})
		}
	}
}
