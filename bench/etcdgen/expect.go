package etcdgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Expect is what a store holds once every entry DataDir wrote is applied:
// the newest revision and the final state of a few keys the last entries
// wrote. It is how a benchmark checks that a replay (boltfix's or etcd's
// own) really applied the WAL, not just that it finished.
type Expect struct {
	ConsistentIndex uint64 `json:"consistent_index"` // the db's, where the WAL's entries start after
	LastIndex       uint64 `json:"last_index"`
	// Entries and RecordBytes say what the WAL holds, for a benchmark's
	// rates.
	Entries     int         `json:"entries"`
	RecordBytes int64       `json:"record_bytes"`
	Revision    int64       `json:"revision"`
	Keys        []ExpectKey `json:"keys"`
}

// ExpectKey is one key's final state: its value, or deleted.
type ExpectKey struct {
	Key     string `json:"key"`
	Value   []byte `json:"value,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
}

// ErrUnexpected: a store does not hold what Expect says.
var ErrUnexpected = errors.New("etcdgen: the store does not hold the WAL's writes")

// ReadExpect reads an Expect written as JSON (gendb -expect).
func ReadExpect(path string) (*Expect, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var e Expect
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &e, nil
}

// CheckDB checks the etcd db at path (bbolt, read-only): its newest
// revision and the newest record of every expected key. It reads the key
// bucket from its end, where the WAL's revisions are, until every key is
// found.
func (e *Expect) CheckDB(path string) error {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	want := map[string]ExpectKey{}
	for _, k := range e.Keys {
		want[k.Key] = k
	}
	var errs []error
	err = db.View(func(tx *bolt.Tx) error {
		kb := tx.Bucket([]byte("key"))
		if kb == nil {
			return fmt.Errorf("%w: %s has no key bucket", ErrUnexpected, path)
		}
		c := kb.Cursor()
		k, v := c.Last()
		if k == nil || len(k) < 17 {
			return fmt.Errorf("%w: %s has no revision", ErrUnexpected, path)
		}
		if rev := int64(binary.BigEndian.Uint64(k)); rev != e.Revision {
			errs = append(errs, fmt.Errorf("newest revision %d, want %d", rev, e.Revision))
		}
		for ; k != nil && len(want) > 0; k, v = c.Prev() {
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(v, &kv); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			w, ok := want[string(kv.Key)]
			if !ok {
				continue
			}
			delete(want, w.Key)
			tomb := len(k) == 18 && k[17] == 't'
			errs = append(errs, w.check(!tomb, kv.Value))
		}
		for k := range want {
			errs = append(errs, fmt.Errorf("%q: no record", k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnexpected, path, err)
	}
	return nil
}

// CheckEtcd checks what the etcd serving at endpoint returns: the
// revision and every expected key, with linearizable reads.
func (e *Expect) CheckEtcd(endpoint string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, w := range e.Keys {
		resp, err := cli.Get(ctx, w.Key)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			errs = append(errs, w.check(false, nil))
		} else {
			errs = append(errs, w.check(true, resp.Kvs[0].Value))
		}
		if resp.Header.Revision != e.Revision {
			errs = append(errs, fmt.Errorf("etcd serves revision %d, want %d", resp.Header.Revision, e.Revision))
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: etcd at %s: %w", ErrUnexpected, endpoint, err)
	}
	return nil
}

// check compares a key's state with what is expected of it.
func (w ExpectKey) check(present bool, value []byte) error {
	switch {
	case w.Deleted && present:
		return fmt.Errorf("%q: present, want deleted", w.Key)
	case !w.Deleted && !present:
		return fmt.Errorf("%q: deleted, want a value of %d bytes", w.Key, len(w.Value))
	case !w.Deleted && !bytes.Equal(value, w.Value):
		return fmt.Errorf("%q: another value (%d bytes, want %d)", w.Key, len(value), len(w.Value))
	}
	return nil
}
