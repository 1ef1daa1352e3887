package kube

import (
	"encoding/base64"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// encryptionConfig is the part of kube-apiserver's EncryptionConfiguration
// (apiserver.config.k8s.io/v1) that holds local keys. It is parsed here
// instead of through k8s.io/apiserver, which would pull in the whole
// apiserver for four structs.
type encryptionConfig struct {
	Kind      string `json:"kind"`
	Resources []struct {
		Resources []string `json:"resources"`
		Providers []struct {
			AESCBC    *providerKeys `json:"aescbc"`
			AESGCM    *providerKeys `json:"aesgcm"`
			Secretbox *providerKeys `json:"secretbox"`
		} `json:"providers"`
	} `json:"resources"`
}

type providerKeys struct {
	Keys []struct {
		Name   string `json:"name"`
		Secret string `json:"secret"`
	} `json:"keys"`
}

// maxConfigSize bounds the config file read: a real one is a few KiB.
const maxConfigSize = 4 << 20

// LoadEncryptionConfig reads an EncryptionConfiguration file and returns a
// keyring of its aescbc, aesgcm and secretbox keys (identity and kms
// providers hold no local key and are skipped).
func LoadEncryptionConfig(path string) (*Keyring, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxConfigSize {
		return nil, fmt.Errorf("%s: %d bytes is too large for an EncryptionConfiguration", path, st.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kr, err := ParseEncryptionConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kr, nil
}

// ParseEncryptionConfig parses EncryptionConfiguration YAML or JSON.
func ParseEncryptionConfig(b []byte) (*Keyring, error) {
	var c encryptionConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	if c.Kind != "" && c.Kind != "EncryptionConfiguration" {
		return nil, fmt.Errorf("kind %q is not EncryptionConfiguration", c.Kind)
	}
	var keys []Key
	for _, r := range c.Resources {
		for _, p := range r.Providers {
			for _, pk := range []struct {
				name string
				keys *providerKeys
			}{{"aescbc", p.AESCBC}, {"aesgcm", p.AESGCM}, {"secretbox", p.Secretbox}} {
				if pk.keys == nil {
					continue
				}
				for _, k := range pk.keys.Keys {
					secret, err := base64.StdEncoding.DecodeString(k.Secret)
					if err != nil {
						return nil, fmt.Errorf("%s key %q: secret is not base64: %w", pk.name, k.Name, err)
					}
					keys = append(keys, Key{Provider: pk.name, Name: k.Name, Secret: secret})
				}
			}
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no aescbc, aesgcm or secretbox key in the encryption config")
	}
	return NewKeyring(keys)
}
