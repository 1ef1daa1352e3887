package kube

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"golang.org/x/crypto/nacl/secretbox"
	"google.golang.org/protobuf/encoding/protowire"
)

// canon renders v as JSON with sorted keys, so that a decoded object and
// the object the fixture wrote compare as text.
func canon(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&x); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(x)
	return string(b)
}

// TestDecodeFixtureObjects decodes every object the fixture wrote through
// etcd, as a client read it back, and compares it with what was written:
// the protobuf envelope through the scheme, the CRD's JSON, and the
// aescbc-encrypted secrets with the fixture's EncryptionConfiguration.
func TestDecodeFixtureObjects(t *testing.T) {
	_, truth := fixtures.CachedKubeObjects(t, "default", fixtures.DefaultKubeObjectsWorkload())
	kr, err := ParseEncryptionConfig([]byte(fixtures.KubeEncryptionConfig))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	encrypted := 0
	for k, o := range truth.Live {
		// Without keys an encrypted value is named, not decoded.
		d, err := Decode([]byte(k), o.Value, nil)
		if o.Encrypted {
			encrypted++
			if !errors.Is(err, ErrEncrypted) || d == nil || d.Encryption == nil || d.Encryption.Provider != "aescbc" || d.Encryption.KeyName != "key1" {
				t.Fatalf("%s: encrypted value without keys: %+v %v", k, d, err)
			}
		}
		d, err = Decode([]byte(k), o.Value, kr)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if d.Kind != o.Kind || d.Namespace != o.Namespace || d.Name != o.Name {
			t.Fatalf("%s: decoded %s, wrote %s %s/%s", k, d, o.Kind, o.Namespace, o.Name)
		}
		if got, want := canon(t, d.Content), canon(t, o.Object); got != want {
			t.Fatalf("%s: decoded object differs from the one written:\n got %s\nwant %s", k, got, want)
		}
		if (d.Encryption != nil) != o.Encrypted {
			t.Fatalf("%s: encryption %+v, fixture encrypted %v", k, d.Encryption, o.Encrypted)
		}
		kinds[d.Kind]++
	}
	t.Logf("%d live objects by kind %v, %d encrypted; %d deleted; rev %d, compacted at %d", len(truth.Live), kinds, encrypted, len(truth.Deleted), truth.Rev, truth.CompactRev)
	if len(kinds) != 5 || encrypted == 0 {
		t.Fatalf("fixture kinds %v, %d encrypted: the test covers less than it claims", kinds, encrypted)
	}
}

func TestDescribe(t *testing.T) {
	_, truth := fixtures.CachedKubeObjects(t, "default", fixtures.DefaultKubeObjectsWorkload())
	for k, o := range truth.Deleted {
		d, err := Describe(o.Value)
		if o.Encrypted {
			if !errors.Is(err, ErrEncrypted) {
				t.Fatalf("%s: %v", k, err)
			}
			kp, ok := ParseKey([]byte(k))
			if !ok || kp.Namespace != o.Namespace || kp.Name != o.Name {
				t.Fatalf("ParseKey(%s) = %+v", k, kp)
			}
			continue
		}
		if err != nil || d.Kind != o.Kind || d.Namespace != o.Namespace || d.Name != o.Name {
			t.Fatalf("%s: %+v %v", k, d, err)
		}
	}
}

// The three local providers, sealed here in the formats of
// k8s.io/apiserver/pkg/storage/value/encrypt (aes.go, secretbox.go).
func TestDecryptProviders(t *testing.T) {
	plain := []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"ns"},"data":{"a":"Yg=="}}`)
	key := bytes.Repeat([]byte{7}, 32)
	etcdKey := []byte("/registry/secrets/ns/s")
	block, _ := aes.NewCipher(key)

	// aescbc: IV, CBC, PKCS#7.
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	cbcBuf := make([]byte, aes.BlockSize+len(plain)+pad)
	rand.Read(cbcBuf[:aes.BlockSize])
	copy(cbcBuf[aes.BlockSize:], plain)
	for i := aes.BlockSize + len(plain); i < len(cbcBuf); i++ {
		cbcBuf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, cbcBuf[:aes.BlockSize]).CryptBlocks(cbcBuf[aes.BlockSize:], cbcBuf[aes.BlockSize:])

	// aesgcm: 12-byte nonce, sealed with the etcd key as additional data.
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	gcmBuf := aead.Seal(append([]byte(nil), nonce...), nonce, plain, etcdKey)

	// secretbox: 24-byte nonce.
	var sbKey [32]byte
	var sbNonce [24]byte
	copy(sbKey[:], key)
	rand.Read(sbNonce[:])
	sbBuf := secretbox.Seal(append([]byte(nil), sbNonce[:]...), plain, &sbNonce, &sbKey)

	kr, err := NewKeyring([]Key{{"aescbc", "k1", key}, {"aesgcm", "k2", key}, {"secretbox", "k3", key}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		provider, name string
		ct             []byte
	}{{"aescbc", "k1", cbcBuf}, {"aesgcm", "k2", gcmBuf}, {"secretbox", "k3", sbBuf}} {
		v := append([]byte("k8s:enc:"+c.provider+":v1:"+c.name+":"), c.ct...)
		o, err := Decode(etcdKey, v, kr)
		if err != nil || o.Name != "s" || o.Encryption == nil || !o.Encryption.Decrypted || o.Encryption.Provider != c.provider {
			t.Fatalf("%s: %+v %v", c.provider, o, err)
		}
		// A flipped ciphertext byte must fail, not decode garbage.
		bad := bytes.Clone(v)
		bad[len(bad)-1] ^= 1
		if _, err := Decode(etcdKey, bad, kr); !errors.Is(err, ErrDecrypt) && c.provider != "aescbc" {
			t.Fatalf("%s: flipped byte: %v", c.provider, err)
		}
	}
	// aesgcm authenticates the etcd key: the value under another key fails.
	if _, err := Decode([]byte("/registry/secrets/ns/other"), append([]byte("k8s:enc:aesgcm:v1:k2:"), gcmBuf...), kr); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("aesgcm under another key: %v", err)
	}
	// A key name the config lacks is reported as such.
	if _, err := Decode(etcdKey, append([]byte("k8s:enc:aescbc:v1:old:"), cbcBuf...), kr); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("unknown key name: %v", err)
	}
}

func TestParseEncryptionAndKey(t *testing.T) {
	e, ct, ok := ParseEncryption([]byte("k8s:enc:kms:v2:vault:\x01\x02"))
	if !ok || e.Provider != "kms" || e.Version != "v2" || e.KeyName != "vault" || !bytes.Equal(ct, []byte{1, 2}) {
		t.Fatalf("%+v %q %v", e, ct, ok)
	}
	if _, _, ok := ParseEncryption([]byte("k8s:enc:aescbc")); ok {
		t.Fatal("truncated prefix accepted")
	}
	for k, want := range map[string]KeyPath{
		"/registry/configmaps/ns/a":            {"configmaps", "ns", "a"},
		"/registry/services/specs/ns/a":        {"services/specs", "ns", "a"},
		"/registry/namespaces/ns":              {"namespaces", "", "ns"},
		"/registry/example.com/widgets/ns/w":   {"example.com/widgets", "ns", "w"},
		"/registry/apiregistration.k8s.io/x/y": {"apiregistration.k8s.io/x", "", "y"},
	} {
		if got, ok := ParseKey([]byte(k)); !ok || got != want {
			t.Errorf("ParseKey(%s) = %+v, want %+v", k, got, want)
		}
	}
	if _, err := Decode(nil, []byte("\x00\x01garbage"), nil); !errors.Is(err, ErrNotKubernetes) {
		t.Fatalf("garbage: %v", err)
	}
}

// A protobuf value of a type the scheme lacks (an aggregated API, a newer
// Kubernetes) still names its apiVersion, kind, namespace and name.
func TestUnknownTypeFallsBackToEnvelope(t *testing.T) {
	var meta []byte
	meta = protowire.AppendTag(meta, 1, protowire.BytesType)
	meta = protowire.AppendString(meta, "gadget-1")
	meta = protowire.AppendTag(meta, 3, protowire.BytesType)
	meta = protowire.AppendString(meta, "ns")
	var raw []byte
	raw = protowire.AppendTag(raw, 1, protowire.BytesType)
	raw = protowire.AppendBytes(raw, meta)
	var tm []byte
	tm = protowire.AppendTag(tm, 1, protowire.BytesType)
	tm = protowire.AppendString(tm, "gadgets.example.com/v1")
	tm = protowire.AppendTag(tm, 2, protowire.BytesType)
	tm = protowire.AppendString(tm, "Gadget")
	v := []byte("k8s\x00")
	v = protowire.AppendTag(v, 1, protowire.BytesType)
	v = protowire.AppendBytes(v, tm)
	v = protowire.AppendTag(v, 2, protowire.BytesType)
	v = protowire.AppendBytes(v, raw)
	o, err := Describe(v)
	if !errors.Is(err, ErrUnknownType) || o.APIVersion != "gadgets.example.com/v1" || o.Kind != "Gadget" || o.Namespace != "ns" || o.Name != "gadget-1" || o.Content != nil {
		t.Fatalf("%+v %v", o, err)
	}
}
