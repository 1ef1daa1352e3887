package kube

import (
	"bytes"
	"math/rand"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// apiserverValues are objects framed by apimachinery's own protobuf
// serializer, as kube-apiserver stores them, and a custom resource's JSON.
func apiserverValues(t *testing.T) [][]byte {
	t.Helper()
	rnd := rand.New(rand.NewSource(1))
	secretData := make([]byte, 9000)
	rnd.Read(secretData)
	objs := []runtime.Object{
		&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "default", UID: "u-1"},
			Data:       map[string][]byte{"tls.key": secretData}, Type: corev1.SecretTypeOpaque},
		&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "kube-system"},
			Data:       map[string]string{"config.yaml": string(bytes.Repeat([]byte("key: value\n"), 600))}},
		&corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: map[string]string{"app": "x"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}}},
		&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}},
	}
	var out [][]byte
	for _, o := range objs {
		var b bytes.Buffer
		if err := protoSerializer.Encode(o, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Bytes())
	}
	out = append(out, []byte(`{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"g"},"spec":{"size":3}}`+"\n"))
	return out
}

func TestFrameIntact(t *testing.T) {
	values := apiserverValues(t)
	for i, v := range values {
		if !FrameIntact(v) {
			t.Fatalf("value %d as the apiserver writes it: frame not intact", i)
		}
	}
	for _, v := range [][]byte{[]byte("k8s:enc:aescbc:v1:key1:\x00\x01"), []byte("plain"), nil} {
		if !FrameIntact(v) {
			t.Fatalf("%q is not judged, but FrameIntact says broken", v)
		}
	}
	// Random bytes over the end of a value, as over a continuation page
	// that holds its last bytes: the frame catches nearly all of them.
	rnd := rand.New(rand.NewSource(2))
	trials, caught := 0, 0
	for _, v := range values {
		for range 2000 {
			b := bytes.Clone(v)
			from := len(b) - 8 - rnd.Intn(min(len(b)-12, 4096))
			rnd.Read(b[from:])
			trials++
			if !FrameIntact(b) {
				caught++
			}
		}
	}
	t.Logf("random bytes over the last 8 bytes or more: %d of %d caught", caught, trials)
	if caught < trials*999/1000 {
		t.Fatalf("only %d of %d values with random bytes over their end caught", caught, trials)
	}
	// A changed byte inside raw, short of its end, keeps the frame: the
	// limit the report states.
	b := bytes.Clone(values[0])
	b[len(b)/2] ^= 0xff
	if !FrameIntact(b) {
		t.Fatal("a byte inside the Secret's data changed the frame: the test's premise is wrong")
	}
}
