package deploy

import (
	"slices"
	"strings"
)

// Labels that name a container's service (see discovery/docker): the
// deploy keeps a new container in its old container's service.
const (
	labelService        = "cutover.service"
	labelRoutes         = "cutover.routes."
	labelComposeProject = "com.docker.compose.project"
	labelComposeService = "com.docker.compose.service"
)

// dockerName is a container name without Docker's leading slash.
func dockerName(name string) string { return strings.TrimPrefix(name, "/") }

// shortDocker is the short form of a Docker ID.
func shortDocker(id string) string { return id[:min(12, len(id))] }

// shortImage is the short form of an image ID ("sha256:" dropped).
func shortImage(id string) string { return shortDocker(strings.TrimPrefix(id, "sha256:")) }

// containerName names the container that a deploy creates to replace the
// container old: old's name without the suffix of the deploy that created
// it, then the new deploy's short ID, so that "proj-web-1" becomes
// "proj-web-1-1a2b3c4d", then "proj-web-1-5e6f7a8b".
func containerName(old, oldDeployID, deployID string) string {
	base := old
	if oldDeployID != "" {
		base = strings.TrimSuffix(base, "-"+shortID(oldDeployID))
	}
	return base + "-" + shortID(deployID)
}

// pinService returns the labels that keep a copy of a container, which
// gets a new name, in the services its old name gave it: when neither a
// cutover.service label nor the Compose labels name the service, the
// service is the container name (and, for a named route, the container
// name and the route name).
func pinService(labels map[string]string, name string) map[string]string {
	if labels[labelService] != "" || (labels[labelComposeProject] != "" && labels[labelComposeService] != "") {
		return nil
	}
	out := map[string]string{labelService: name}
	for _, route := range routeNames(labels) {
		if key := labelRoutes + route + ".service"; labels[key] == "" {
			out[key] = name + "-" + route
		}
	}
	return out
}

// routeNames lists the names of the explicit routes (cutover.routes.NAME.*).
func routeNames(labels map[string]string) []string {
	var names []string
	for k := range labels {
		rest, ok := strings.CutPrefix(k, labelRoutes)
		if !ok {
			continue
		}
		if name, _, ok := strings.Cut(rest, "."); ok && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// serviceCandidates lists the services a container's labels and name may
// give it, most likely first. Only the proxy knows for sure (Traffic); the
// candidates are checked against it.
func serviceCandidates(labels map[string]string, name string) []string {
	base := name
	if p, s := labels[labelComposeProject], labels[labelComposeService]; p != "" && s != "" {
		base = p + "-" + s
	}
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(labels[labelService])
	add(base)
	for _, route := range routeNames(labels) {
		switch own := labels[labelRoutes+route+".service"]; {
		case own != "":
			add(own)
		case labels[labelService] == "":
			add(base + "-" + route)
		}
	}
	return out
}
