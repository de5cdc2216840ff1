package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// router matches the op table's REST routes, written as net/http patterns
// ("PUT /api/v1/users/{user_id}/profile"). It exists because ServeMux refuses
// patterns that overlap with neither more specific, and the table has such pairs
// (PUT .../friends/{user_id}/remark and PUT .../friends/request/{request_id} both
// match .../friends/request/remark). Here the first segment where two routes
// differ decides: a literal beats {name}, which beats {name...}. Where ServeMux
// has an answer, this is the same one. Routes with the same method and shape are
// an error. About thirty routes: a linear scan is fast enough.
type router struct {
	routes []apiRoute // in precedence order: the first match wins
}

type apiRoute struct {
	method  string
	pattern string
	segs    []segment
	handler func(http.ResponseWriter, *http.Request)
}

type segKind uint8

const (
	segLiteral segKind = iota
	segWild            // {name}: one segment
	segRest            // {name...}: the rest of the path, at the end only
)

type segment struct {
	kind segKind
	text string // the literal, or the wildcard's name
}

func parseSegments(path string) ([]segment, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("path %q must start with /", path)
	}
	parts := strings.Split(path[1:], "/")
	segs := make([]segment, len(parts))
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "...}"):
			if i != len(parts)-1 {
				return nil, fmt.Errorf("path %q: %s must be last", path, p)
			}
			segs[i] = segment{segRest, p[1 : len(p)-4]}
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			segs[i] = segment{segWild, p[1 : len(p)-1]}
		case strings.ContainsAny(p, "{}"):
			return nil, fmt.Errorf("path %q: bad segment %q", path, p)
		default:
			segs[i] = segment{segLiteral, p}
		}
	}
	return segs, nil
}

// compareRoutes orders a before b (negative) if a wins where both match.
func compareRoutes(a, b apiRoute) int {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		sa, sb := a.segs[i], b.segs[i]
		if sa.kind != sb.kind {
			return int(sa.kind) - int(sb.kind)
		}
		if sa.kind == segLiteral && sa.text != sb.text {
			return strings.Compare(sa.text, sb.text) // disjoint: any stable order
		}
	}
	if c := len(b.segs) - len(a.segs); c != 0 {
		return c // longer first: a shorter one only matches more through a rest wildcard
	}
	return strings.Compare(a.method, b.method)
}

// add registers handler for "METHOD /path".
func (rt *router) add(pattern string, handler func(http.ResponseWriter, *http.Request)) error {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || method == "" {
		return fmt.Errorf("route %q: want \"METHOD /path\"", pattern)
	}
	segs, err := parseSegments(path)
	if err != nil {
		return fmt.Errorf("route %q: %w", pattern, err)
	}
	r := apiRoute{method: method, pattern: pattern, segs: segs, handler: handler}
	for _, o := range rt.routes {
		if o.method == method && compareRoutes(o, r) == 0 {
			return fmt.Errorf("route %q duplicates %q", pattern, o.pattern)
		}
	}
	i, _ := slices.BinarySearchFunc(rt.routes, r, compareRoutes)
	rt.routes = slices.Insert(rt.routes, i, r)
	return nil
}

// ServeHTTP runs the first matching route with its path values set on r, or
// answers 404 not_found.
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			writeNotFound(w)
			return
		}
		parts[i] = u
	}
	for _, route := range rt.routes {
		if route.method != r.Method && !(route.method == http.MethodGet && r.Method == http.MethodHead) {
			continue
		}
		if values, ok := route.match(parts); ok {
			for i := 0; i+1 < len(values); i += 2 {
				r.SetPathValue(values[i], values[i+1])
			}
			route.handler(w, r)
			return
		}
	}
	writeNotFound(w)
}

// match returns the route's path values as name, value pairs.
func (route apiRoute) match(parts []string) ([]string, bool) {
	var values []string
	for i, s := range route.segs {
		if s.kind == segRest {
			if i >= len(parts) {
				return nil, false
			}
			return append(values, s.text, strings.Join(parts[i:], "/")), true
		}
		if i >= len(parts) {
			return nil, false
		}
		switch s.kind {
		case segLiteral:
			if parts[i] != s.text {
				return nil, false
			}
		case segWild:
			if parts[i] == "" {
				return nil, false
			}
			values = append(values, s.text, parts[i])
		}
	}
	return values, len(parts) == len(route.segs)
}
