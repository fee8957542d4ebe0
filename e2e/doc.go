// Package e2e holds the end-to-end tests: they build the cutover binary,
// start it as a separate process with real configuration, and drive real
// HTTP traffic through it to backends on 127.0.0.1. The package has no
// non-test code besides this comment.
package e2e
