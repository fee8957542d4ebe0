//go:build !race && linux

package rawio

func raceRead([]byte, int, error) {}
func raceBeforeWrite()            {}
func raceWritten([]byte, int)     {}
func raceWrittenv([][]byte, int)  {}
