package salvage

import "testing"

// resourceOfBytes (the per-key path of the ledger) names the same resource
// as resourceOf for every shape of key.
func TestResourceOfBytesAgrees(t *testing.T) {
	for _, k := range []string{
		"/registry/pods/default/web-0", "/registry/minions/node-1", "/registry/ranges/serviceips",
		"/registry/apiextensions.k8s.io/customresourcedefinitions/foos.example.com",
		"/registry/example.com/widgets/ns/w1", "/registry/a.b", "/registry/a.b/", "/registry/",
		"/registry//x", "/registry/pods", "compact_rev_key", "", "/registry/x.y/z/",
	} {
		want, got := resourceOf(k), string(resourceOfBytes([]byte(k)))
		if got != want {
			t.Errorf("%q: resourceOfBytes %q, resourceOf %q", k, got, want)
		}
	}
}
