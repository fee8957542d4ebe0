package deploy

import (
	"errors"
	"fmt"
	"strings"
)

// Triggers that the package itself sets.
const (
	triggerRollback     = "rollback"
	triggerAutoredeploy = "autoredeploy"
)

// withDefaults returns r with its zero fields set to the defaults, but
// Strategy, which depends on the service's label.
func (r Request) withDefaults() Request {
	if r.Batch == 0 {
		r.Batch = DefaultBatch
	}
	if r.DrainTimeout == 0 {
		r.DrainTimeout = DefaultDrainTimeout
	}
	if r.HealthTimeout == 0 {
		r.HealthTimeout = DefaultHealthTimeout
	}
	if r.MaxPause == 0 {
		r.MaxPause = DefaultMaxPause
	}
	return r
}

// Validate reports what is wrong with r, naming the field.
func (r Request) Validate() error {
	var errs []error
	if strings.TrimSpace(r.Service) == "" {
		errs = append(errs, errors.New("service: a service name is required"))
	}
	if r.Strategy != "" {
		if err := r.Strategy.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("strategy: %w", err))
		}
	}
	if r.Batch < 0 {
		errs = append(errs, fmt.Errorf("batch %d: want a positive number of containers", r.Batch))
	}
	for _, d := range []struct {
		name string
		v    interface{ String() string }
		neg  bool
	}{
		{"drain timeout", r.DrainTimeout, r.DrainTimeout < 0},
		{"health timeout", r.HealthTimeout, r.HealthTimeout < 0},
		{"max pause", r.MaxPause, r.MaxPause < 0},
	} {
		if d.neg {
			errs = append(errs, fmt.Errorf("%s %s: want a positive duration", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// Validate reports whether s is a known strategy.
func (s Strategy) Validate() error {
	switch s {
	case Rolling, BlueGreen, Recreate:
		return nil
	}
	return fmt.Errorf("%q: want %s, %s or %s", string(s), Rolling, BlueGreen, Recreate)
}
