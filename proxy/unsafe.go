package proxy

import "unsafe"

// unsafeString views b as a string without copying. The caller must not
// change b while the string is in use and must not keep the string beyond
// b's lifetime. Lookup uses it for map keys on a stack buffer, where the
// string never escapes.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
