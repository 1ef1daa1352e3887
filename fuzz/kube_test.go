package fuzz

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"testing"

	"github.com/boltfix/boltfix/history"
	"github.com/boltfix/boltfix/kube"
	"github.com/boltfix/boltfix/pagewalk"
	"golang.org/x/crypto/nacl/secretbox"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// fuzzKey is the key of every provider in the fuzz keyring, so that the
// fuzzer can reach the decrypted paths by mutating the seeds.
var fuzzKey = bytes.Repeat([]byte{0x42}, 32)

var fuzzEtcdKey = []byte("/registry/secrets/ns/s")

func fuzzKeyring(tb testing.TB) *kube.Keyring {
	kr, err := kube.NewKeyring([]kube.Key{{Provider: "aescbc", Name: "k", Secret: fuzzKey}, {Provider: "aesgcm", Name: "k", Secret: fuzzKey}, {Provider: "secretbox", Name: "k", Secret: fuzzKey}})
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}

// kubeSeeds are values as kube-apiserver stores them: protobuf envelopes of
// built-in types, one of a type no scheme knows, a CRD's JSON, and each
// sealed by the three local providers (fixed IVs and nonces: seeds must
// not change between runs).
func kubeSeeds(tb testing.TB) [][]byte {
	sch := runtime.NewScheme()
	_ = corev1.AddToScheme(sch)
	_ = appsv1.AddToScheme(sch)
	ser := protobuf.NewSerializer(sch, sch)
	var seeds [][]byte
	replicas := int32(2)
	for _, o := range []runtime.Object{
		&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", Labels: map[string]string{"a": "b"}}, Data: map[string]string{"k": "v"}},
		&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Data: map[string][]byte{"p": []byte("x")}},
		&appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns"}, Spec: appsv1.DeploymentSpec{Replicas: &replicas}},
	} {
		var b bytes.Buffer
		if err := ser.Encode(o, &b); err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b.Bytes())
	}
	// A type the scheme lacks: the envelope of a ConfigMap relabelled.
	unk := bytes.Replace(seeds[0], []byte("ConfigMap"), []byte("Gizmo\x00\x00\x00\x00"), 1)
	seeds = append(seeds, unk, []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"ns","labels":{"a":"b"}},"spec":{"size":1}}`))
	plain := seeds[1]
	block, _ := aes.NewCipher(fuzzKey)
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	cbc := make([]byte, aes.BlockSize+len(plain)+pad)
	copy(cbc[aes.BlockSize:], plain)
	for i := aes.BlockSize + len(plain); i < len(cbc); i++ {
		cbc[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, cbc[:aes.BlockSize]).CryptBlocks(cbc[aes.BlockSize:], cbc[aes.BlockSize:])
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	gcm := aead.Seal(append([]byte(nil), nonce...), nonce, plain, fuzzEtcdKey)
	var k [32]byte
	var n [24]byte
	copy(k[:], fuzzKey)
	sb := secretbox.Seal(append([]byte(nil), n[:]...), plain, &n, &k)
	seeds = append(seeds,
		append([]byte("k8s:enc:aescbc:v1:k:"), cbc...),
		append([]byte("k8s:enc:aesgcm:v1:k:"), gcm...),
		append([]byte("k8s:enc:secretbox:v1:k:"), sb...),
		[]byte("k8s:enc:kms:v2:vault:\x0a\x00"),
	)
	return seeds
}

// FuzzKubeValue decodes arbitrary etcd values as Kubernetes objects: Decode
// never panics (not even inside apimachinery: ErrPanic fails the target),
// stays within the allocation budget, and an object it returns without
// error has a kind and content that render as a manifest.
func FuzzKubeValue(f *testing.F) {
	for _, s := range kubeSeeds(f) {
		f.Add(s)
	}
	kr := fuzzKeyring(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxInput {
			t.Skip()
		}
		stop := watchdog("kube.Decode", len(b))
		defer stop()
		var o *kube.Object
		var err error
		checkAlloc(t, b, allocBudget(len(b)), "kube.Decode", func() { o, err = kube.Decode(fuzzEtcdKey, b, kr) })
		if errors.Is(err, kube.ErrPanic) {
			t.Fatalf("decoder panicked: %v", err)
		}
		var de *kube.DecodeError
		if err != nil && !errors.As(err, &de) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		if err != nil {
			return
		}
		if o == nil || o.Content == nil || o.Kind == "" || o.APIVersion == "" {
			t.Fatalf("no error but object %+v", o)
		}
		for _, keep := range []bool{false, true} {
			if _, err := json.Marshal(o.Manifest(keep, 7)); err != nil {
				t.Fatalf("manifest does not marshal: %v", err)
			}
		}
		if d, derr := kube.Describe(b); derr == nil && (d.Kind != o.Kind || d.Name != o.Name || d.Namespace != o.Namespace) {
			t.Fatalf("Describe %s differs from Decode %s", d.String(), o.String())
		}
	})
}

// FuzzKubeFrame: kube.FrameIntact never panics on arbitrary values, and a
// protobuf value it passes is exactly what apimachinery writes: its
// runtime.Unknown, decoded and encoded again by apimachinery's own code,
// gives back the same bytes (the frame check is no looser than the
// serializer it stands for).
func FuzzKubeFrame(f *testing.F) {
	for _, s := range kubeSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x00\x1a\x00\x22\x00"))
	// The same with typeMeta's length written in two bytes: apimachinery
	// reads it, but never writes it so.
	f.Add([]byte("k8s\x00\x0a\x8c\x00\x0a\x02v1\x12\x06Secret\x12\x00\x1a\x00\x22\x00"))
	f.Add([]byte(`{"apiVersion":"example.com/v1","kind":"Gadget"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxInput {
			t.Skip()
		}
		if !kube.FrameIntact(b) || !bytes.HasPrefix(b, []byte("k8s\x00")) {
			return
		}
		var unk runtime.Unknown
		if err := unk.Unmarshal(b[4:]); err != nil {
			t.Fatalf("frame intact, but apimachinery cannot read it: %v", err)
		}
		again, err := unk.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b[4:]) {
			t.Fatalf("frame intact, but apimachinery writes it otherwise:\n%x\n%x", b[4:], again)
		}
	})
}

// FuzzEncryptionConfig parses arbitrary EncryptionConfiguration files.
func FuzzEncryptionConfig(f *testing.F) {
	f.Add([]byte("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: key1\n        secret: " +
		"QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\n  - identity: {}\n"))
	f.Add([]byte(`{"kind":"EncryptionConfiguration","resources":[{"providers":[{"secretbox":{"keys":[{"name":"a","secret":"AAAA"}]}}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			t.Skip()
		}
		stop := watchdog("ParseEncryptionConfig", len(b))
		defer stop()
		kr, err := kube.ParseEncryptionConfig(b)
		if err == nil && kr.Len() == 0 {
			t.Fatal("a keyring without keys and no error")
		}
	})
}

// FuzzHistory collects every version of every key from seed dbs damaged by
// structured edits: Collect never panics nor fails on a file Scan read,
// stays within the allocation budget, and its verdicts are consistent:
// versions of a key strictly ascending, a live version only in the live
// tree and only as the key's newest, a deleted key's state backed by a
// tombstone or an unreached newest version.
func FuzzHistory(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{1, 0, 5, 0, 3, 0, 0, 0})
	f.Add(uint8(2), []byte{2, 0, 4, 0, 0, 0, 0, 0})
	f.Add(uint8(0), []byte{4, 12, 3, 0, 0xff, 0xff, 0, 0})
	f.Fuzz(checkHistoryEdits)
}

// checkHistoryEdits is FuzzHistory's body, shared with named regressions.
func checkHistoryEdits(t *testing.T, which uint8, edits []byte) {
	dbs := builtSeeds(t)
	b := applyEdits(dbs[int(which)%len(dbs)], edits)
	if len(b) > maxInput {
		t.Skip()
	}
	stop := watchdog("history.Collect", len(b))
	defer stop()
	file, err := pagewalk.NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return
	}
	res, err := file.Scan(pagewalk.Options{})
	if err != nil {
		t.Fatalf("scan: %v", err) // FuzzScan holds Scan to its budget
	}
	var h *history.Result
	checkAlloc(t, b, allocBudget(len(b)), "history.Collect", func() {
		h, err = history.Collect(res, history.Options{})
	})
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	checkHistory(t, h)
}

// Fixed: history read every leaf element up to a node's count from disk,
// and each element past the node cost a FormatError: 84 bytes allocated
// per input byte (testdata/fuzz/FuzzHistory/47932594dd4a27e3).
func TestIssueHistoryLeafCount(t *testing.T) {
	checkHistoryEdits(t, 0, []byte("X2000\xa600"))
}

func checkHistory(t *testing.T, h *history.Result) {
	t.Helper()
	n := 0
	for _, k := range h.Keys {
		if len(k.Versions) == 0 {
			t.Fatalf("key %q without versions", k.Key)
		}
		for i, v := range k.Versions {
			n++
			if i > 0 {
				p := k.Versions[i-1].Revision
				if p.Main > v.Revision.Main || p.Main == v.Revision.Main && p.Sub > v.Revision.Sub || p == v.Revision {
					t.Fatalf("%q: versions out of order: %v then %v", k.Key, p, v.Revision)
				}
			}
			switch v.State {
			case history.Live:
				if !v.Reached || i != len(k.Versions)-1 || v.Tombstone {
					t.Fatalf("%q: live version %+v not the reached newest put", k.Key, v)
				}
			case history.Superseded, history.Compacted, history.Deleted, history.Unknown:
			default:
				t.Fatalf("%q: state %q", k.Key, v.State)
			}
			if v.Tombstone && v.State != history.Deleted {
				t.Fatalf("%q: tombstone in state %q", k.Key, v.State)
			}
		}
		if (k.State == history.Live) != (k.Versions[len(k.Versions)-1].State == history.Live) {
			t.Fatalf("%q: key state %q, newest version %q", k.Key, k.State, k.Versions[len(k.Versions)-1].State)
		}
	}
	if n != h.Records || h.Reached > h.Records {
		t.Fatalf("%d versions listed, %d records counted (%d reached)", n, h.Records, h.Reached)
	}
}
