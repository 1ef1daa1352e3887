// Package kube decodes the values kube-apiserver stores in etcd into
// Kubernetes objects, with the Kubernetes libraries themselves: the
// "k8s\x00" protobuf envelope (a runtime.Unknown holding apiVersion, kind
// and the object's protobuf bytes) through apimachinery's protobuf
// serializer and the k8s.io/api types, and JSON values (CRDs, and anything
// stored with the JSON media type) as they are. Values encrypted at rest
// ("k8s:enc:<provider>:v1:<key name>:") are recognised and named by provider
// and key; with a Keyring built from the apiserver's EncryptionConfiguration
// the aescbc, aesgcm and secretbox providers are decrypted (in the formats of
// k8s.io/apiserver/pkg/storage/value/encrypt). A protobuf value of a type no
// registered scheme knows (an aggregated API, a newer Kubernetes) still
// yields the envelope's apiVersion and kind and, when its metadata field
// parses, namespace and name.
//
// # Hardening
//
// Values come from carved pages and may be any bytes. Decode never panics:
// the generated protobuf code checks every length against its input, and a
// panic in a third-party decoder is turned into an error wrapping ErrPanic
// (the fuzz targets treat that as a bug). Nothing allocates more than a
// small multiple of the value's size.
package kube
