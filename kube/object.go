package kube

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Object is a Kubernetes object decoded from an etcd value.
type Object struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Namespace  string            `json:"namespace,omitempty"`
	Name       string            `json:"name"`
	UID        string            `json:"uid,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Encoding is how the (decrypted) value was stored: "protobuf" or "json".
	Encoding string `json:"encoding"`
	// Encryption is set when the value was encrypted at rest.
	Encryption *Encryption `json:"encryption,omitempty"`
	// Content is the whole object in its JSON form (what kubectl get -o
	// json prints), or nil when only the envelope could be read.
	Content map[string]any `json:"-"`
}

// protoPrefix is the magic of kube-apiserver's protobuf serializer.
var protoPrefix = []byte("k8s\x00")

// Describe names the object a value holds (apiVersion, kind, namespace,
// name, uid, labels) without any key: for reports that only need to say
// which object a record was. An encrypted value yields its Encryption and
// an error wrapping ErrEncrypted; ParseKey names it from its etcd key.
func Describe(value []byte) (Object, error) {
	o, err := Decode(nil, value, nil)
	if o == nil {
		return Object{}, err
	}
	return *o, err
}

// Decode decodes an etcd value into an object. etcdKey is the record's key
// (aesgcm authenticates it; it may be nil when no value is aesgcm). kr may
// be nil. On failure the returned Object, when not nil, holds what could be
// read (the encryption prefix; the envelope's apiVersion and kind), and the
// error is a *DecodeError.
func Decode(etcdKey, value []byte, kr *Keyring) (o *Object, err error) {
	defer func() {
		if r := recover(); r != nil {
			o, err = nil, decodeErr("unknown", ErrPanic, "%v", r)
		}
	}()
	if enc, _, ok := ParseEncryption(value); ok {
		plain, err := kr.decrypt(enc, value, etcdKey)
		if err != nil {
			return &Object{Encryption: &enc, Encoding: "encrypted"}, err
		}
		enc.Decrypted = true
		o, err := decodePlain(plain)
		if o != nil {
			o.Encryption = &enc
		}
		return o, err
	}
	return decodePlain(value)
}

func decodePlain(value []byte) (*Object, error) {
	if bytes.HasPrefix(value, protoPrefix) {
		return decodeProto(value)
	}
	if t := bytes.TrimLeft(value, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return decodeJSON(value)
	}
	return nil, decodeErr("unknown", ErrNotKubernetes, "")
}

// decodeProto decodes the "k8s\x00" envelope with apimachinery's protobuf
// serializer into the registered type, and renders it as JSON-shaped maps.
func decodeProto(value []byte) (*Object, error) {
	obj, gvk, err := protoSerializer.Decode(value, nil, nil)
	if err != nil {
		if runtime.IsNotRegisteredError(err) || runtime.IsMissingKind(err) || runtime.IsMissingVersion(err) {
			return unknownProto(value)
		}
		return nil, decodeErr("protobuf", ErrMalformed, "%v", err)
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, decodeErr("protobuf", ErrMalformed, "%v", err)
	}
	o := &Object{Encoding: "protobuf", Content: content}
	o.APIVersion, o.Kind = gvk.GroupVersion().String(), gvk.Kind
	content["apiVersion"], content["kind"] = o.APIVersion, o.Kind
	if m, err := meta.Accessor(obj); err == nil {
		o.Namespace, o.Name, o.UID, o.Labels = m.GetNamespace(), m.GetName(), string(m.GetUID()), m.GetLabels()
	}
	return o, nil
}

// unknownProto reads the envelope of a type the scheme does not know: its
// apiVersion and kind, and, since every Kubernetes object's protobuf form
// has ObjectMeta as field 1, its namespace and name when that parses.
func unknownProto(value []byte) (*Object, error) {
	var unk runtime.Unknown
	if err := unk.Unmarshal(value[len(protoPrefix):]); err != nil {
		return nil, decodeErr("protobuf", ErrMalformed, "envelope: %v", err)
	}
	o := &Object{Encoding: "protobuf", APIVersion: unk.APIVersion, Kind: unk.Kind}
	if m, ok := protoMeta(unk.Raw); ok {
		o.Namespace, o.Name, o.UID, o.Labels = m.Namespace, m.Name, string(m.UID), m.Labels
	}
	return o, decodeErr("protobuf", ErrUnknownType, "%s %s", unk.APIVersion, unk.Kind)
}

// protoMeta parses field 1 of an object's protobuf bytes as ObjectMeta.
func protoMeta(raw []byte) (metav1.ObjectMeta, bool) {
	var m metav1.ObjectMeta
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return m, false
		}
		raw = raw[n:]
		if num == 1 && typ == protowire.BytesType {
			b, n := protowire.ConsumeBytes(raw)
			if n < 0 {
				return m, false
			}
			return m, m.Unmarshal(b) == nil
		}
		n = protowire.ConsumeFieldValue(num, typ, raw)
		if n < 0 {
			return m, false
		}
		raw = raw[n:]
	}
	return m, false
}

// decodeJSON keeps a JSON value as it is (numbers exact): CRDs and objects
// stored with the JSON media type need no scheme.
func decodeJSON(value []byte) (*Object, error) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var content map[string]any
	if err := dec.Decode(&content); err != nil {
		return nil, decodeErr("json", ErrMalformed, "%v", err)
	}
	o := &Object{Encoding: "json", Content: content}
	o.APIVersion, _ = content["apiVersion"].(string)
	o.Kind, _ = content["kind"].(string)
	if md, ok := content["metadata"].(map[string]any); ok {
		o.Namespace, _ = md["namespace"].(string)
		o.Name, _ = md["name"].(string)
		o.UID, _ = md["uid"].(string)
		if ls, ok := md["labels"].(map[string]any); ok {
			o.Labels = map[string]string{}
			for k, v := range ls {
				if s, ok := v.(string); ok {
					o.Labels[k] = s
				}
			}
		}
	}
	if o.APIVersion == "" || o.Kind == "" {
		return o, decodeErr("json", ErrMalformed, "no apiVersion or kind")
	}
	return o, nil
}

// String names the object as kubectl would: kind namespace/name.
func (o *Object) String() string {
	if o.Namespace == "" {
		return fmt.Sprintf("%s %s", o.Kind, o.Name)
	}
	return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
}
