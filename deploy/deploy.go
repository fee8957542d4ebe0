// Package deploy replaces the containers of a service with containers of a
// new image, without dropping a request: immutable infrastructure, where a
// new version means new containers and the old ones are destroyed.
//
// A deploy pulls (or finds) the image before it touches anything, creates
// each new container as a copy of an old one with the new image, starts
// it, waits until the proxy serves it (its health checks passed), drains
// the old one through the proxy (no new requests, in-flight ones finish),
// then stops it with its own stop signal and timeout and removes it,
// keeping its volumes. Strategies: rolling (start-first, in batches),
// blue-green (all new first, then switch) and recreate (stop-first, for a
// single writer of a volume: the proxy holds requests during the gap).
//
// If new containers do not become healthy in time, they are removed and
// the old ones keep serving. The previous image, a deploy ID and time are
// kept in the new containers' labels, so history and rollback survive a
// restart of cutover, which stays stateless.
//
// # What happens when it fails
//
// Nothing is touched before the image is known to be there: a missing
// image that cannot be pulled, a bad request, or an old container that
// publishes a fixed host port under a start-first strategy fail the deploy
// while every old container still serves (outcome "failed").
//
// Rolling (and blue-green, which is rolling with one batch of all the
// containers) keeps the old containers it replaced drained and STOPPED,
// not removed, until every batch serves: that is the deploy's commit
// point, after which they are removed. If a batch fails (a new container
// does not serve within the health timeout, exits, or cannot be created,
// or the deploy is cancelled), the new containers of that batch are
// drained and removed (the batch's old containers were never drained, so
// they served all along), then the old containers of the earlier batches
// are started again and, once the proxy serves each one, the new
// container that replaced it is drained and removed. Every switch is
// start-first, so no request fails, and afterwards the old version serves
// alone (outcome "rolled-back"). An old container that does not serve
// again keeps its replacement, and the outcome is "failed" with a message
// that says which containers run. (Bringing an old container back relies
// on the proxy admitting a restarted container again once it passes its
// health checks, although it was drained; an old container with Docker's
// auto-remove is gone once stopped and cannot come back.)
//
// Recreate asks the proxy to hold requests, drains and stops the old
// containers, then creates and starts the new ones on the same volumes.
// If they do not serve, they are removed, the old ones are started again
// and waited for, and the hold is released. If an old container cannot
// be stopped, no new one starts (two writers): the others are started
// again.
//
// A new container that exits while the deploy waits for it (or, when its
// restart policy restarts it, exits three times) fails the batch at once,
// without waiting for the health timeout.
//
// Problems that leave the new version serving do not undo a deploy: an
// old container that was drained (it gets no requests) but cannot be
// stopped or removed. The outcome is "succeeded" and Result.Error says
// what is left to clean up by hand. A cancelled ctx aborts the deploy at
// its next step and reverts it as above; a switch that has begun (drain,
// stop) and the revert itself run to their end regardless of ctx.
//
// # Background deploys
//
// Trigger queues a deploy per service, newest request first; Run starts
// them, one per service at a time, and follows Docker's image events:
// when the image reference that containers labelled
// cutover.autoredeploy=true run names another image than theirs (a tag,
// pull or load moved it), their service is redeployed with that
// reference. An autoredeploy whose service runs the image already by the
// time it starts is dropped.
//
// # Start-first and host ports
//
// Rolling and blue-green run an old and a new container side by side; a
// container that publishes a fixed host port (or uses the host network)
// cannot have a twin, so such a deploy is refused before anything is
// touched, with a message that says to use recreate or to publish no
// fixed port (the proxy reaches containers on their own ports).
//
// # The copy
//
// A new container is a copy of the old one it replaces: its command,
// entrypoint, environment, labels, working directory, user, exposed ports,
// health check, stop signal and timeout, host configuration (binds,
// mounts, restart policy, resources, port bindings, ...) and networks with
// their aliases, with the new image and a new name
// ("<old name without a previous deploy suffix>-<8 hex of the deploy ID>").
// Values that the old container merely inherited from its image (same
// value in the old image's config) are left out, so that the new image's
// own defaults apply: a new image may change its CMD, ENV or HEALTHCHECK.
// Every volume of the old container, named or anonymous, is mounted by
// name at the same path, so data carries over; no volume is ever removed.
// IP and MAC addresses, the hostname and the ID-derived alias are not
// copied. When the old container's service name came from its container
// name, the new one gets a cutover.service label with that name, so that it
// backs the same service under its new name.
//
// Deployer is safe for concurrent use; one deploy per service runs at a
// time.
//
// The package drives the Docker API through the Engine interface and the
// proxy through the Traffic interface, both defined here; it imports
// nothing else of the project.
package deploy

import (
	"context"
	"time"
)

// Strategy is how old containers are replaced.
type Strategy string

const (
	// Rolling starts Batch new containers, waits until they serve, then
	// drains and removes as many old ones, until all are replaced.
	Rolling Strategy = "rolling"
	// BlueGreen starts all new containers, waits until every one serves,
	// then drains and removes all old ones at once.
	BlueGreen Strategy = "blue-green"
	// Recreate stops the old containers first (the proxy holds incoming
	// requests meanwhile), then starts the new ones: for services whose
	// volume must have a single writer.
	Recreate Strategy = "recreate"
)

// Defaults of Request.
const (
	DefaultStrategy      = Rolling
	DefaultBatch         = 1
	DefaultDrainTimeout  = 30 * time.Second
	DefaultHealthTimeout = 60 * time.Second
	DefaultMaxPause      = 30 * time.Second
)

// Labels that a deploy writes on the containers it creates, and that users
// set.
const (
	LabelStrategy     = "cutover.deploy.strategy"    // user: the service's default strategy
	LabelAutoredeploy = "cutover.autoredeploy"       // user: redeploy when the image tag moves
	LabelID           = "cutover.deploy.id"          // written: the deploy that created the container
	LabelTime         = "cutover.deploy.time"        // written: RFC 3339 time of that deploy
	LabelImage        = "cutover.deploy.image"       // written: the image reference deployed
	LabelPrevious     = "cutover.deploy.previous"    // written: the image reference it replaced, for rollback
	LabelPreviousID   = "cutover.deploy.previous-id" // written: the image ID it replaced
)

// Request asks for one deploy. Zero fields mean the defaults above (and,
// for Strategy, the service's cutover.deploy.strategy label first).
type Request struct {
	Service string
	// Image is the new image reference (name:tag or name@digest). Empty
	// means the reference the service's first container runs: a redeploy
	// of the same tag (with Pull, of what the registry now has under it).
	// Rollback ignores it.
	Image         string
	Strategy      Strategy
	Batch         int
	DrainTimeout  time.Duration
	HealthTimeout time.Duration
	MaxPause      time.Duration
	// Pull pulls Image even when it is present locally (a webhook says
	// the registry has a newer image under the tag). Without it, a local
	// image is used as it is, and only a missing one is pulled.
	Pull bool
	// Trigger says who asked: "cli", "webhook", "autoredeploy", "rollback".
	Trigger string
}

// Step is one line of progress, sent to the caller as the deploy goes.
type Step struct {
	At      time.Time `json:"at"`
	Service string    `json:"service"`
	ID      string    `json:"id"`
	// Phase is a short stable word: "pull", "plan", "create", "start",
	// "wait", "serving", "drain", "stop", "remove", "rollback", "done",
	// "failed", and for recreate "hold" and "release".
	Phase string `json:"phase"`
	// Container is the container the step is about, if any.
	Container string `json:"container,omitempty"`
	Message   string `json:"message"`
}

// Result is the outcome of a deploy.
type Result struct {
	ID       string   `json:"id"`
	Service  string   `json:"service"`
	Strategy Strategy `json:"strategy"`
	Image    string   `json:"image"`
	Previous string   `json:"previous,omitempty"`
	Outcome  string   `json:"outcome"` // "succeeded", "failed", "rolled-back"
	// Error says why the deploy failed or was rolled back, or, for one
	// that succeeded, what is left to clean up by hand.
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	// Trigger is Request.Trigger; empty for deploys known from labels.
	Trigger string `json:"trigger,omitempty"`
}

// Outcomes of a deploy.
const (
	// Succeeded: the new containers serve and the old ones are gone.
	Succeeded = "succeeded"
	// RolledBack: the new containers failed and were removed; the old
	// ones serve.
	RolledBack = "rolled-back"
	// Failed: the deploy did not happen (nothing was touched), or it
	// could not be fully reverted (Result.Error says what runs).
	Failed = "failed"
)

// Traffic is what a deploy asks of the proxy. Containers are named by ID.
type Traffic interface {
	// Containers returns the IDs of the running containers that back the
	// service now, in a stable order.
	Containers(service string) []string
	// WaitServing returns when the proxy routes requests of the service to
	// the container: it is in the routing table and passed its health
	// checks. It returns ctx's error if that does not happen first.
	WaitServing(ctx context.Context, service, containerID string) error
	// Drain takes the container's backends out of rotation at once (no new
	// requests; idle connections to it are closed) and returns when its
	// in-flight requests have finished or ctx is done, with the number of
	// requests still in flight.
	Drain(ctx context.Context, service, containerID string) int
	// Hold makes requests of the service that find no available backend
	// wait, up to max, for one to become available instead of failing with
	// 503. The returned function ends the hold; waiting requests then
	// proceed (or fail as usual).
	Hold(service string, max time.Duration) (release func())
}
