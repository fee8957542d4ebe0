package docker

import "net/netip"

// container is what the provider knows of one container: the parts of a
// Docker inspect that routing needs, as plain data, so that turning
// containers into a snapshot (build) is a pure function.
type container struct {
	ID   string
	Name string // without the leading "/"
	// Labels are all the container's labels.
	Labels map[string]string
	// Env holds the container's environment variables that the provider
	// reads (VIRTUAL_HOST, VIRTUAL_PORT, VIRTUAL_PATH for --compat
	// nginx-proxy); nil when none.
	Env map[string]string
	// Running is true while the container's process runs (also when paused).
	Running bool
	// Paused is true while the container is paused.
	Paused bool
	// Stopping is true from a kill or stop event until the container
	// starts again: it gets no new requests.
	Stopping bool
	// Health is Docker's HEALTHCHECK status: "" (no health check),
	// "starting", "healthy" or "unhealthy".
	Health string
	// ExposedPorts are the container's exposed TCP ports, sorted.
	ExposedPorts []int
	// Networks maps the names of the networks the container is attached
	// to, to its address on each. Addresses may be invalid (zero) on a
	// network that gave the container none.
	Networks map[string]netip.Addr
	// NetworkMode is the HostConfig network mode ("bridge", "host",
	// "container:ID", a network name…).
	NetworkMode string
}

// self describes cutover's own place: where it runs and which networks it
// can reach containers on.
type self struct {
	// InContainer is true when cutover runs in a container.
	InContainer bool
	// ID is cutover's own container ID when InContainer.
	ID string
	// Networks are the names of the networks cutover's own container is
	// attached to.
	Networks []string
}

// options are the settings of build that come from flags.
type options struct {
	// ExposeByDefault routes containers without cutover.enable=true (but
	// never those with cutover.enable=false).
	ExposeByDefault bool
	// CompatNginxProxy reads VIRTUAL_HOST, VIRTUAL_PORT and VIRTUAL_PATH
	// from the environment as cutover.host, cutover.port and cutover.path.
	CompatNginxProxy bool
	// Self is where cutover runs.
	Self self
}

// labelPrefix starts every cutover label.
const labelPrefix = "cutover."
