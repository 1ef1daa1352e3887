package fuzz

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/boltfix/boltfix/salvage"
	bolt "go.etcd.io/bbolt"
)

// genericSeedFirst is the first FuzzSalvage selector byte that picks a
// generic (not etcd) seed: selectors below it keep picking the etcd seeds
// as before, so committed corpus entries mean what they meant.
const genericSeedFirst = 128

var genericSeeds struct {
	once sync.Once
	dbs  []seedDB
	err  error
}

// builtGenericSeeds are small bbolt files that are not etcd's, written with
// bbolt's defaults (a synced freelist): a containerd-shaped nested layout
// (v1/<ns>/{images,containers}/<name>/labels, inline and page-rooted
// buckets, values past a page) with updates and deletes that leave free
// pages, and a raft-boltdb-shaped one (logs with 8-byte keys, conf).
func builtGenericSeeds(tb testing.TB) []seedDB {
	tb.Helper()
	genericSeeds.once.Do(func() {
		dir, err := os.MkdirTemp("", "boltfix-fuzz-generic")
		if err != nil {
			genericSeeds.err = err
			return
		}
		defer os.RemoveAll(dir)
		for _, s := range []struct {
			name  string
			build func(*bolt.DB) error
		}{{"containerd-512", buildContainerdLike}, {"raft-1k", buildRaftLike}} {
			p := filepath.Join(dir, s.name)
			ps := 512
			if s.name == "raft-1k" {
				ps = 1024
			}
			db, err := bolt.Open(p, 0o600, &bolt.Options{PageSize: ps})
			if err != nil {
				genericSeeds.err = err
				return
			}
			err = s.build(db)
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				genericSeeds.err = fmt.Errorf("%s: %w", s.name, err)
				return
			}
			b, err := os.ReadFile(p)
			if err != nil {
				genericSeeds.err = err
				return
			}
			genericSeeds.dbs = append(genericSeeds.dbs, seedDB{name: s.name, data: b, ps: ps})
		}
	})
	if genericSeeds.err != nil {
		tb.Fatal(genericSeeds.err)
	}
	return genericSeeds.dbs
}

func buildContainerdLike(db *bolt.DB) error {
	for round := 0; round < 3; round++ {
		err := db.Update(func(tx *bolt.Tx) error {
			v1, err := tx.CreateBucketIfNotExists([]byte("v1"))
			if err != nil {
				return err
			}
			if err := v1.Put([]byte("version"), []byte{byte(round)}); err != nil {
				return err
			}
			for _, ns := range []string{"default", "k8s.io"} {
				for _, kind := range []string{"images", "containers"} {
					b, err := v1.CreateBucketIfNotExists([]byte(ns))
					if err != nil {
						return err
					}
					if b, err = b.CreateBucketIfNotExists([]byte(kind)); err != nil {
						return err
					}
					for i := 0; i < 12; i++ {
						name := fmt.Sprintf("%s-%s-%02d", kind, ns, i)
						if round == 2 && i%4 == 1 {
							if err := b.DeleteBucket([]byte(name)); err != nil && err != bolt.ErrBucketNotFound {
								return err
							}
							continue
						}
						o, err := b.CreateBucketIfNotExists([]byte(name))
						if err != nil {
							return err
						}
						o.Put([]byte("createdat"), []byte(fmt.Sprintf("t%d", i)))
						o.Put([]byte("updatedat"), []byte(fmt.Sprintf("t%d-r%d", i, round)))
						if i%5 == 0 {
							o.Put([]byte("spec"), make([]byte, 600+i)) // past a 512-byte page
						}
						l, err := o.CreateBucketIfNotExists([]byte("labels"))
						if err != nil {
							return err
						}
						l.Put([]byte("app"), []byte(fmt.Sprintf("a%d", i%3)))
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func buildRaftLike(db *bolt.DB) error {
	for batch := uint64(0); batch < 8; batch++ {
		err := db.Update(func(tx *bolt.Tx) error {
			logs, err := tx.CreateBucketIfNotExists([]byte("logs"))
			if err != nil {
				return err
			}
			conf, err := tx.CreateBucketIfNotExists([]byte("conf"))
			if err != nil {
				return err
			}
			for i := batch * 10; i < batch*10+10; i++ {
				k := []byte{0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}
				logs.Put(k, []byte(fmt.Sprintf("entry %d %0*d", i, int(i%50), i)))
			}
			if batch > 3 { // a snapshot lets the oldest logs go
				for i := (batch - 4) * 10; i < (batch-3)*10; i++ {
					logs.Delete([]byte{0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)})
				}
			}
			return conf.Put([]byte("CurrentTerm"), []byte{0, 0, 0, 0, 0, 0, 0, byte(batch)})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// The generic seeds take the generic path, and salvage gives them back
// whole: a FuzzSalvage selector at or past genericSeedFirst really fuzzes it.
func TestGenericSeedsSalvageWhole(t *testing.T) {
	for _, s := range builtGenericSeeds(t) {
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.db"), filepath.Join(dir, "out.db")
		if err := os.WriteFile(in, s.data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := salvage.Run(in, out, salvage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Generic == nil || !rep.Complete || rep.Generic.Written == 0 || rep.Generic.LostFound.Records != 0 {
			t.Fatalf("%s: generic %v complete %v", s.name, rep.Generic != nil, rep.Complete)
		}
		checkSalvageOutput(t, out, rep)
	}
}
