//go:build !unix

package rawio

import "errors"

// Supported is false: callers make their system calls through Go's net
// and os packages, and every function here fails.
const Supported = false

func Read(int, []byte) (int, error)     { return 0, errors.ErrUnsupported }
func Write(int, []byte) (int, error)    { return 0, errors.ErrUnsupported }
func Writev(int, [][]byte) (int, error) { return 0, errors.ErrUnsupported }
func Peek(int, []byte) (int, error)     { return 0, errors.ErrUnsupported }

func ReadNow(int, []byte) (int, error, bool) { return 0, errors.ErrUnsupported, true }
