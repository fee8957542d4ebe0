//go:build race && linux

package rawio

import (
	"runtime"
	"unsafe"
)

// ioSync orders, for the race detector, what a goroutine did before a
// write with what another does after a read, as x/sys/unix's does.
var ioSync int64

func raceRead(p []byte, n int, err error) {
	if n > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(unsafe.SliceData(p)), n)
	}
	if err == nil {
		runtime.RaceAcquire(unsafe.Pointer(&ioSync))
	}
}

func raceBeforeWrite() { runtime.RaceReleaseMerge(unsafe.Pointer(&ioSync)) }

func raceWritten(p []byte, n int) {
	if n > 0 {
		runtime.RaceReadRange(unsafe.Pointer(unsafe.SliceData(p)), n)
	}
}

func raceWrittenv(v [][]byte, n int) {
	for _, b := range v {
		if n <= 0 {
			return
		}
		if len(b) > 0 {
			raceWritten(b, min(n, len(b)))
			n -= len(b)
		}
	}
}
