package kube

import "strconv"

// serverMetadata are the metadata fields the apiserver sets; an object
// re-created with kubectl apply must not carry them (a stale
// resourceVersion or uid makes the apply fail or target another object).
var serverMetadata = []string{"resourceVersion", "uid", "managedFields", "creationTimestamp", "generation", "selfLink"}

// Manifest returns the object as a manifest for kubectl apply. Unless
// keepServerFields, it drops the fields the server sets (resourceVersion,
// uid, managedFields, creationTimestamp, generation, selfLink, and status:
// the controllers recompute it). With keepServerFields, resourceVersion is
// set to modRevision as the apiserver does when it reads an object (it
// stores none). Content itself is not modified; nil when there is none.
func (o *Object) Manifest(keepServerFields bool, modRevision int64) map[string]any {
	if o.Content == nil {
		return nil
	}
	m := make(map[string]any, len(o.Content))
	for k, v := range o.Content {
		m[k] = v
	}
	md, _ := o.Content["metadata"].(map[string]any)
	nmd := make(map[string]any, len(md)+1)
	for k, v := range md {
		nmd[k] = v
	}
	if keepServerFields {
		if modRevision > 0 {
			nmd["resourceVersion"] = strconv.FormatInt(modRevision, 10)
		}
	} else {
		for _, f := range serverMetadata {
			delete(nmd, f)
		}
		delete(m, "status")
	}
	// ToUnstructured renders an unset creationTimestamp as null; drop it
	// either way rather than print "creationTimestamp: null".
	if v, ok := nmd["creationTimestamp"]; ok && v == nil {
		delete(nmd, "creationTimestamp")
	}
	m["metadata"] = nmd
	return m
}
