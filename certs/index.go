package certs

import (
	"crypto/tls"
	"slices"
	"strings"
	"time"
)

// state is what one reload found. It is immutable once index has run.
type state struct {
	entries  map[string]*entry // in service, by name
	files    map[string]bool   // names that have files, usable or not
	problems []problem         // sorted by files

	exact        map[string]*entry // by host
	wildcard     map[string]*entry // by the parent of *.parent
	fallback     *tls.Certificate
	fallbackName string
	names        []string // of entries, sorted
}

// index builds the lookup maps and chooses the default certificate:
// defaultName, else "default", else the first by name. A defaultName
// without a certificate in service is a problem, and the next choice is
// used.
func (st *state) index(defaultName string) {
	st.exact, st.wildcard = map[string]*entry{}, map[string]*entry{}
	now := time.Now()
	for name, e := range st.entries {
		st.names = append(st.names, name)
		for _, h := range e.hosts {
			m, key := st.exact, h
			if parent, ok := strings.CutPrefix(h, "*."); ok {
				m, key = st.wildcard, parent
			} else if strings.Contains(h, "*") {
				continue // no client matches a partial wildcard
			}
			if cur := m[key]; cur == nil || better(e, cur, now) {
				m[key] = e
			}
		}
	}
	slices.Sort(st.names)
	if defaultName != "" && st.entries[defaultName] == nil && !st.hasProblem(defaultName) {
		st.problems = append(st.problems, problem{name: defaultName, files: defaultName + ".*",
			msg: "the default certificate has no files: add " + defaultName + ".crt and " + defaultName + ".key or " + defaultName + ".pem"})
	}
	slices.SortFunc(st.problems, func(a, b problem) int { return strings.Compare(a.files, b.files) })
	for _, n := range []string{defaultName, "default"} {
		if e := st.entries[n]; n != "" && e != nil {
			st.fallback, st.fallbackName = e.cert, n
			return
		}
	}
	if len(st.names) > 0 {
		st.fallbackName = st.names[0]
		st.fallback = st.entries[st.fallbackName].cert
	}
}

// better reports whether a should serve a name that b serves too: a
// certificate valid now beats one that is not, then the later expiry
// wins, then the first name.
func better(a, b *entry, now time.Time) bool {
	av, bv := valid(a, now), valid(b, now)
	if av != bv {
		return av
	}
	if na, nb := a.cert.Leaf.NotAfter, b.cert.Leaf.NotAfter; !na.Equal(nb) {
		return na.After(nb)
	}
	return a.name < b.name
}

func valid(e *entry, now time.Time) bool {
	l := e.cert.Leaf
	return !now.Before(l.NotBefore) && !now.After(l.NotAfter)
}

// match returns the certificate for a server name: exact, else the
// wildcard one label up; nil when none.
func (st *state) match(serverName string) *tls.Certificate {
	if serverName == "" {
		return nil
	}
	name := normalize(serverName)
	if e := st.exact[name]; e != nil {
		return e.cert
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if e := st.wildcard[parent]; e != nil {
			return e.cert
		}
	}
	return nil
}

func (st *state) hasProblem(name string) bool {
	return slices.ContainsFunc(st.problems, func(p problem) bool { return p.name == name })
}
