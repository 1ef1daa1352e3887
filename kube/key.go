package kube

import "strings"

// KeyPath is what an etcd key says about the object under it.
type KeyPath struct {
	Resource  string `json:"resource"` // e.g. "configmaps", "services/specs", "example.com/widgets"
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// RegistryPrefix is kube-apiserver's default --etcd-prefix plus "/".
const RegistryPrefix = "/registry/"

// ParseKey reads /registry/<resource>/<namespace>/<name> or
// /registry/<resource>/<name>. The key alone cannot tell a namespace from
// a second resource segment (services/specs, a CRD's group/resource), so
// for these known two-segment resources the split is fixed and otherwise a
// guess: prefer the decoded object's own metadata.
func ParseKey(key []byte) (KeyPath, bool) {
	s := string(key)
	if !strings.HasPrefix(s, RegistryPrefix) {
		return KeyPath{}, false
	}
	parts := strings.Split(strings.TrimPrefix(s, RegistryPrefix), "/")
	res := 1
	if len(parts) > 1 && (parts[0] == "services" || strings.Contains(parts[0], ".")) {
		res = 2 // services/specs, services/endpoints, <group>/<resource>
	}
	switch {
	case len(parts) == res+1:
		return KeyPath{Resource: strings.Join(parts[:res], "/"), Name: parts[res]}, parts[res] != ""
	case len(parts) == res+2:
		return KeyPath{Resource: strings.Join(parts[:res], "/"), Namespace: parts[res], Name: parts[res+1]}, parts[res+1] != ""
	}
	return KeyPath{}, false
}
