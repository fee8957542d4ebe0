package deploy

import (
	"context"

	"github.com/moby/moby/client"
)

// Engine is the part of the Docker API that deploys use. Its methods have
// the signatures of *client.Client, which implements it; tests use a fake.
type Engine interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	// ImagePull starts a pull; the returned stream must be drained (Wait)
	// for the pull to complete.
	ImagePull(ctx context.Context, ref string, opts client.ImagePullOptions) (client.ImagePullResponse, error)
	ContainerList(ctx context.Context, opts client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerInspect(ctx context.Context, id string, opts client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerCreate(ctx context.Context, opts client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, id string, opts client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerStop(ctx context.Context, id string, opts client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerRemove(ctx context.Context, id string, opts client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	NetworkConnect(ctx context.Context, network string, opts client.NetworkConnectOptions) (client.NetworkConnectResult, error)
	// Events follows the engine's events until ctx ends or the stream
	// fails (one error on Err).
	Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult
}

var _ Engine = (*client.Client)(nil)

// NewEngine returns the Engine of a Docker client. The client is used as
// it is: its methods are the Engine's.
func NewEngine(c *client.Client) Engine { return c }
