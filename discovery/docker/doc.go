// Package docker is the provider of services from Docker containers. It
// finds containers by their cutover.* labels, follows them through the
// Docker event stream and reports full snapshots.
//
// How it talks to the engine: at start (and after every reconnect and every
// resync period) it lists the candidate containers, filtered by label at
// the API unless every container is a candidate, and inspects each. After
// that an event only says that something changed: the provider re-inspects
// the one container the event names and reports the new whole snapshot at
// once, with no throttle window. The event stream is opened before the
// list, so no change between the two is missed.
//
// A kill or stop event takes the container's backends out at once
// (draining): Docker emits it when it sends the stop signal, so new
// requests go elsewhere while the process finishes its in-flight ones. A
// kill with a signal that does not stop the process (SIGHUP, SIGUSR1…)
// changes nothing.
//
// If the engine or the event stream goes away, the last snapshot stays in
// effect (the provider reports nothing), and the provider reconnects with
// backoff and resyncs. Each step is logged once.
//
// Turning containers into a snapshot is the pure function build, which owns
// every rule of labels, grouping, ports and networks.
package docker
