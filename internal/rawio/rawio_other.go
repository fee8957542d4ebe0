//go:build !linux

package rawio

import "errors"

// Supported is false: elsewhere than on Linux, callers make their system
// calls through Go's net and os packages, and every function here fails.
const Supported = false

var errUnsupported = errors.ErrUnsupported

func Read(int, []byte) (int, error)     { return 0, errUnsupported }
func Write(int, []byte) (int, error)    { return 0, errUnsupported }
func Writev(int, [][]byte) (int, error) { return 0, errUnsupported }
func Peek(int, []byte) (int, error)     { return 0, errUnsupported }
