package kube

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"

	"golang.org/x/crypto/nacl/secretbox"
)

// encPrefix starts every value kube-apiserver encrypted at rest; the whole
// prefix is "k8s:enc:<provider>:v1:<key name>:" (kms: "k8s:enc:kms:v2:").
var encPrefix = []byte("k8s:enc:")

// Encryption names how a value was encrypted at rest.
type Encryption struct {
	Provider  string `json:"provider"`  // aescbc, aesgcm, secretbox, kms
	Version   string `json:"version"`   // v1, v2 (kms)
	KeyName   string `json:"key_name"`  // the key's name in the EncryptionConfiguration
	Decrypted bool   `json:"decrypted"` // a configured key opened it
}

// maxPrefix bounds the search for the end of the key name: the apiserver
// validates key names, and a prefix longer than this is not one.
const maxPrefix = 300

// ParseEncryption recognises an encrypted value and returns its provider,
// version, key name and the ciphertext after the prefix.
func ParseEncryption(value []byte) (Encryption, []byte, bool) {
	if !bytes.HasPrefix(value, encPrefix) {
		return Encryption{}, nil, false
	}
	rest := value[len(encPrefix):]
	var parts [3]string
	for i := range parts {
		n := bytes.IndexByte(rest[:min(len(rest), maxPrefix)], ':')
		if n < 0 {
			return Encryption{}, nil, false
		}
		parts[i], rest = string(rest[:n]), rest[n+1:]
	}
	return Encryption{Provider: parts[0], Version: parts[1], KeyName: parts[2]}, rest, true
}

// Key is one key of an EncryptionConfiguration provider.
type Key struct {
	Provider string // aescbc, aesgcm, secretbox
	Name     string
	Secret   []byte // the decoded key bytes
}

// Keyring holds the keys that can open values encrypted at rest. The zero
// Keyring opens nothing.
type Keyring struct {
	keys []Key
}

// NewKeyring checks the key sizes the providers accept and returns a
// keyring of them.
func NewKeyring(keys []Key) (*Keyring, error) {
	for _, k := range keys {
		switch k.Provider {
		case "aescbc", "aesgcm":
			if n := len(k.Secret); n != 16 && n != 24 && n != 32 {
				return nil, errors.New(k.Provider + " key " + k.Name + ": must be 16, 24 or 32 bytes")
			}
		case "secretbox":
			if len(k.Secret) != 32 {
				return nil, errors.New("secretbox key " + k.Name + ": must be 32 bytes")
			}
		default:
			return nil, errors.New("provider " + k.Provider + " cannot be decrypted here")
		}
	}
	return &Keyring{keys: keys}, nil
}

// Len is the number of keys.
func (kr *Keyring) Len() int {
	if kr == nil {
		return 0
	}
	return len(kr.keys)
}

// decrypt opens value, which ParseEncryption recognised as enc with
// ciphertext ct. etcdKey is the record's etcd key: aesgcm authenticates it
// (kube-apiserver passes the storage key as additional data), so a value
// copied to another key does not open.
func (kr *Keyring) decrypt(enc Encryption, value, etcdKey []byte) ([]byte, error) {
	if kr == nil {
		return nil, decodeErr("encrypted", ErrEncrypted, "%s key %q; give --encryption-config to decrypt", enc.Provider, enc.KeyName)
	}
	tried := false
	var lastErr error
	for _, k := range kr.keys {
		// Match the full prefix the apiserver wrote, as its prefix
		// transformers do: a key name may itself hold ':'.
		p := "k8s:enc:" + k.Provider + ":v1:" + k.Name + ":"
		if !bytes.HasPrefix(value, []byte(p)) {
			continue
		}
		tried = true
		ct := value[len(p):]
		var out []byte
		var err error
		switch k.Provider {
		case "aescbc":
			out, err = openCBC(k.Secret, ct)
		case "aesgcm":
			out, err = openGCM(k.Secret, ct, etcdKey)
		case "secretbox":
			out, err = openSecretbox(k.Secret, ct)
		}
		if err == nil {
			return out, nil
		}
		lastErr = err
	}
	if !tried {
		return nil, decodeErr("encrypted", ErrEncrypted, "%s key %q is not in the encryption config", enc.Provider, enc.KeyName)
	}
	return nil, decodeErr("encrypted", ErrDecrypt, "%s key %q: %v", enc.Provider, enc.KeyName, lastErr)
}

// openCBC reverses the aescbc provider: a 16-byte IV, then AES-CBC with
// PKCS#7 padding.
func openCBC(key, data []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	bs := aes.BlockSize
	if len(data) < 2*bs || (len(data)-bs)%bs != 0 {
		return nil, errors.New("ciphertext is not an IV plus whole blocks")
	}
	out := make([]byte, len(data)-bs)
	cipher.NewCBCDecrypter(block, data[:bs]).CryptBlocks(out, data[bs:])
	pad := int(out[len(out)-1])
	if pad == 0 || pad > bs {
		return nil, errors.New("invalid PKCS#7 padding (wrong key?)")
	}
	for _, c := range out[len(out)-pad:] {
		if int(c) != pad {
			return nil, errors.New("invalid PKCS#7 padding (wrong key?)")
		}
	}
	return out[:len(out)-pad], nil
}

// openGCM reverses the aesgcm provider: a 12-byte nonce, then AES-GCM
// sealed with the etcd key as additional data.
func openGCM(key, data, etcdKey []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	ns := aead.NonceSize()
	if len(data) < ns+aead.Overhead() {
		return nil, errors.New("ciphertext shorter than nonce and tag")
	}
	return aead.Open(nil, data[:ns], data[ns:], etcdKey)
}

// openSecretbox reverses the secretbox provider: a 24-byte nonce, then
// NaCl secretbox.
func openSecretbox(key, data []byte) ([]byte, error) {
	const nonceSize = 24
	if len(data) < nonceSize+secretbox.Overhead {
		return nil, errors.New("ciphertext shorter than nonce and tag")
	}
	var k [32]byte
	var nonce [nonceSize]byte
	copy(k[:], key)
	copy(nonce[:], data[:nonceSize])
	out, ok := secretbox.Open(nil, data[nonceSize:], &nonce, &k)
	if !ok {
		return nil, errors.New("secretbox did not open (wrong key?)")
	}
	return out, nil
}
