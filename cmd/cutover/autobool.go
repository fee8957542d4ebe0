package main

import (
	"fmt"
	"strconv"
)

// autoBool is a flag that is true, false or, when not set, automatic.
// "--docker" alone means true.
type autoBool struct {
	set, on bool
}

func (b *autoBool) String() string {
	if b == nil || !b.set {
		return "auto"
	}
	return strconv.FormatBool(b.on)
}

func (b *autoBool) Set(s string) error {
	if s == "auto" {
		*b = autoBool{}
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want auto, true or false")
	}
	*b = autoBool{set: true, on: v}
	return nil
}

func (b *autoBool) IsBoolFlag() bool { return true }
