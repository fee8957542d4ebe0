package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultProbeTimeout bounds the whole probe request.
const DefaultProbeTimeout = 5 * time.Second

// probe GETs url once and returns nil for a 2xx or 3xx answer. Redirects are
// not followed: a 3xx counts as healthy, as Docker's curl-based checks do.
func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("probe %s: status %s", url, resp.Status)
	}
	return nil
}

// probeExit runs probe with DefaultProbeTimeout and maps the result to an
// exit code: 0 healthy, 1 not.
func probeExit(url string, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultProbeTimeout)
	defer cancel()
	if err := probe(ctx, url); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
