package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/history"
	"github.com/boltfix/boltfix/kube"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// kubeDir is a private copy of the Kubernetes fixture and its
// EncryptionConfiguration file.
func kubeDir(t *testing.T) (dir, encConfig string, truth *fixtures.KubeObjectsTruth) {
	t.Helper()
	dir, truth = fixtures.CachedKubeObjects(t, "default", fixtures.DefaultKubeObjectsWorkload())
	encConfig = filepath.Join(t.TempDir(), "encryption.yaml")
	if err := fixtures.WriteKubeEncryptionConfig(encConfig); err != nil {
		t.Fatal(err)
	}
	return dir, encConfig, truth
}

// extracted runs extract with --json --out and returns the report and the
// manifests, item i belonging to report object i.
func extracted(t *testing.T, wantCode int, args ...string) (extractReport, []map[string]any) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "objects.json")
	code, stdout, stderr := runCLI(append([]string{"extract", "--json", "-o", "json", "--out", out}, args...)...)
	if code != wantCode {
		t.Fatalf("extract %v: exit %d, want %d\n%s", args, code, wantCode, stderr)
	}
	var rep extractReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Schema != ExtractSchema {
		t.Fatalf("report: %v %q", err, rep.Schema)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("--out: %v, mode %v (want 0600)", err, st.Mode())
	}
	b, _ := os.ReadFile(out)
	var list struct {
		APIVersion string           `json:"apiVersion"`
		Kind       string           `json:"kind"`
		Items      []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(b, &list); err != nil || list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != len(rep.Objects) {
		t.Fatalf("manifests: %v, %s %s with %d items for %d objects", err, list.APIVersion, list.Kind, len(list.Items), len(rep.Objects))
	}
	return rep, list.Items
}

// sameField compares one top-level field of a manifest with the object the
// fixture wrote, as JSON.
func sameField(t *testing.T, got, want map[string]any, field string) bool {
	t.Helper()
	return canonJSON(t, got[field]) == canonJSON(t, want[field])
}

func canonJSON(t *testing.T, v any) string {
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

// payloadField is the field that holds what the user wrote, per kind.
func payloadField(kind string) string {
	if kind == "ConfigMap" || kind == "Secret" {
		return "data"
	}
	return "spec"
}

// TestExtractDeleted is the first done-when: after a namespace's
// objects were deleted, churned over and compacted away, extract
// --deleted gives back at least 95% of the deleted objects whose last
// record still lies on some page (found here by searching the raw file for
// the exact stored value, independently of pagewalk and history), with
// kind, namespace, name and data exact; it lists no live object, and the
// input is unchanged.
func TestExtractDeleted(t *testing.T) {
	dir, enc, truth := kubeDir(t)
	raw, err := os.ReadFile(fixtures.DBPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	for k, d := range truth.Deleted {
		if bytes.Contains(raw, d.Value) {
			onDisk[k] = true
		}
	}
	if len(onDisk) < 5 {
		t.Fatalf("only %d of %d deleted objects' last versions are on disk: the fixture proves nothing", len(onDisk), len(truth.Deleted))
	}
	before := hashTree(t, dir)
	rep, items := extracted(t, ExitClean, dir, "--prefix", kube.RegistryPrefix, "--deleted", "--encryption-config", enc)
	if hashTree(t, dir) != before {
		t.Fatal("extract changed its input")
	}
	exact, older, secrets := 0, 0, 0
	for i, o := range rep.Objects {
		if _, live := truth.Final[o.Key]; live {
			t.Errorf("%s is live, but extract --deleted lists it", o.Key)
			continue
		}
		d, ok := truth.Deleted[o.Key]
		if !ok {
			continue // a short-lived churn object: deleted too, but not the test's
		}
		if o.Object.Kind == "Secret" {
			secrets++
		}
		item := items[i]
		md, _ := item["metadata"].(map[string]any)
		if item["kind"] != d.Kind || md["namespace"] != d.Namespace || md["name"] != d.Name {
			t.Errorf("%s: extracted %v %v/%v, wrote %s %s/%s", o.Key, item["kind"], md["namespace"], md["name"], d.Kind, d.Namespace, d.Name)
			continue
		}
		for _, f := range []string{"resourceVersion", "uid", "managedFields", "creationTimestamp"} {
			if _, ok := md[f]; ok {
				t.Errorf("%s: server field %s not stripped", o.Key, f)
			}
		}
		if o.Revision != d.ModRevision {
			older++ // an older version: its last one is gone
			if onDisk[o.Key] {
				t.Errorf("%s: extracted revision %d, but its last version (%d) is on disk", o.Key, o.Revision, d.ModRevision)
			}
			continue
		}
		if !sameField(t, item, d.Object, payloadField(d.Kind)) {
			t.Errorf("%s: %s differs from what was written", o.Key, payloadField(d.Kind))
			continue
		}
		exact++
	}
	t.Logf("%d deleted objects, %d with their last version on disk; extract gave back %d exactly, %d at an older version; %d secrets (%d objects extracted in all)",
		len(truth.Deleted), len(onDisk), exact, older, secrets, len(rep.Objects))
	if float64(exact) < 0.95*float64(len(onDisk)) {
		t.Fatalf("gave back %d of the %d deleted objects whose last version is on disk (want >= 95%%)", exact, len(onDisk))
	}
	if rep.Secrets != secretsIn(rep) {
		t.Fatalf("report counts %d secrets, lists %d", rep.Secrets, secretsIn(rep))
	}
}

func secretsIn(r extractReport) int {
	n := 0
	for _, o := range r.Objects {
		if o.Object.Kind == "Secret" {
			n++
		}
	}
	return n
}

// TestExtractLiveMatchesEtcd: extract on a healthy db gives the same
// objects as the client read through etcd at the end of the workload: the
// same keys, each at the revision etcd served and decoding to the object
// the fixture wrote; encrypted secrets without the config are listed as
// undecodable, by provider and key name.
func TestExtractLiveMatchesEtcd(t *testing.T) {
	dir, enc, truth := kubeDir(t)
	for _, prefix := range []string{kube.RegistryPrefix, "/registry/secrets/team-2/"} {
		rep, items := extracted(t, ExitClean, dir, "--prefix", prefix, "--encryption-config", enc, "--keep-server-fields")
		want := 0
		for k := range truth.Final {
			if strings.HasPrefix(k, prefix) {
				want++
			}
		}
		if len(rep.Objects) != want || want == 0 {
			t.Fatalf("prefix %s: extracted %d objects, etcd served %d", prefix, len(rep.Objects), want)
		}
		for i, o := range rep.Objects {
			kv, ok := truth.Final[o.Key]
			if !ok || kv.ModRevision != o.Revision {
				t.Fatalf("%s: extracted revision %d; etcd served %+v (present %v)", o.Key, o.Revision, kv.ModRevision, ok)
			}
			md, _ := items[i]["metadata"].(map[string]any)
			if md["resourceVersion"] != strconvI(kv.ModRevision) {
				t.Fatalf("%s: resourceVersion %v, etcd mod revision %d", o.Key, md["resourceVersion"], kv.ModRevision)
			}
			lo, ok := truth.Live[o.Key]
			if !ok {
				continue // a churn ConfigMap
			}
			for _, f := range []string{"kind", "apiVersion", payloadField(lo.Kind), "metadata"} {
				if f == "metadata" {
					// Every field the fixture wrote, uid and managedFields
					// included (kept with --keep-server-fields).
					w, _ := lo.Object["metadata"].(map[string]any)
					for mk := range w {
						if canonJSON(t, md[mk]) != canonJSON(t, w[mk]) {
							t.Fatalf("%s: metadata.%s = %v, wrote %v", o.Key, mk, md[mk], w[mk])
						}
					}
					continue
				}
				if !sameField(t, items[i], lo.Object, f) {
					t.Fatalf("%s: %s differs from what was written", o.Key, f)
				}
			}
		}
	}
	// Without the config: the encrypted secrets are named, not decoded.
	code, _, stderr := runCLI("extract", dir, "--prefix", "/registry/secrets/", "-o", "yaml")
	if code != ExitDamage || !strings.Contains(stderr, `aescbc key "key1"`) || !strings.Contains(stderr, "Secrets printed") {
		t.Fatalf("no config: exit %d\n%s", code, stderr)
	}
}

func strconvI(i int64) string { b, _ := json.Marshal(i); return string(b) }

// TestHistoryDeletedKey: history shows a deleted key's versions with the
// states the truth implies: its last version deleted (by the tombstone at
// the revision the client saw, when the tombstone is still on disk),
// earlier ones superseded or compacted, none live; a live key's newest
// version live at the revision etcd serves.
func TestHistoryDeletedKey(t *testing.T) {
	dir, _, truth := kubeDir(t)
	raw, err := os.ReadFile(fixtures.DBPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, k := range sortedTruthKeys(truth.Deleted) {
		d := truth.Deleted[k]
		if !bytes.Contains(raw, d.Value) {
			continue
		}
		code, out, stderr := runCLI("history", dir, k, "--json")
		if code != ExitClean {
			t.Fatalf("history %s: exit %d\n%s", k, code, stderr)
		}
		var rep struct {
			Schema string `json:"schema"`
			Keys   []struct {
				Key       string            `json:"key"`
				State     history.State     `json:"state"`
				DeletedAt int64             `json:"deleted_at"`
				Versions  []history.Version `json:"versions"`
			} `json:"keys"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Schema != HistorySchema || len(rep.Keys) != 1 || rep.Keys[0].Key != k {
			t.Fatalf("history %s: %v %+v", k, err, rep)
		}
		hk := rep.Keys[0]
		if hk.State != history.Deleted {
			t.Fatalf("%s: key state %s, want deleted", k, hk.State)
		}
		var last *history.Version
		for i := range hk.Versions {
			v := &hk.Versions[i]
			switch {
			case v.Tombstone:
				if v.Revision.Main != d.DeletedAt || v.State != history.Deleted {
					t.Fatalf("%s: tombstone %+v, client deleted at %d", k, v, d.DeletedAt)
				}
			case v.ModRevision == d.ModRevision:
				last = v
			case v.ModRevision > d.ModRevision:
				t.Fatalf("%s: version at %d after the last one the client saw (%d)", k, v.ModRevision, d.ModRevision)
			case v.Reached && v.State != history.Superseded, !v.Reached && v.State != history.Compacted:
				t.Fatalf("%s: older version %+v", k, v)
			}
		}
		if last == nil || last.State != history.Deleted {
			t.Fatalf("%s: last version %d on disk but history gives %+v", k, d.ModRevision, last)
		}
		if hk.DeletedAt != 0 && (hk.DeletedAt != d.DeletedAt || last.DeletedAt != d.DeletedAt) {
			t.Fatalf("%s: deleted at %d / %d, client deleted at %d", k, hk.DeletedAt, last.DeletedAt, d.DeletedAt)
		}
		if checked++; checked == 5 {
			break
		}
	}
	if checked == 0 {
		t.Fatal("no deleted object's last version on disk: nothing checked")
	}
	// A live key: its newest version is live at etcd's mod revision.
	for k, lo := range truth.Live {
		code, out, _ := runCLI("history", dir, k, "--json")
		var rep historyReport
		if code != ExitClean || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Keys) != 1 {
			t.Fatalf("history %s: exit %d", k, code)
		}
		vs := rep.Keys[0].Versions
		if n := vs[len(vs)-1]; n.State != history.Live || n.ModRevision != truth.Final[k].ModRevision || rep.Keys[0].Key.State != history.Live {
			t.Fatalf("%s: newest %+v, etcd serves mod %d", k, n.Version, lo.ModRevision)
		}
		break
	}
}

func sortedTruthKeys(m map[string]fixtures.KubeObject) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestHistoryExtractDamaged: on the Kubernetes db with a half-zeroed
// branch page in the key bucket, history and extract report the damage
// (exit 1) without panicking, and extract --deleted still lists no object
// that is live.
func TestHistoryExtractDamaged(t *testing.T) {
	dir, enc, truth := kubeDir(t)
	if _, err := fixtures.HalfZeroBranch(fixtures.DBPath(dir), "key", 0); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI("history", dir, "--prefix", kube.RegistryPrefix, "--json")
	if code != ExitDamage {
		t.Fatalf("history on damage: exit %d\n%s", code, stderr)
	}
	var rep historyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.ScanFindings == 0 || !rep.KeyBucketDamaged {
		t.Fatalf("history report: %v findings %d damaged %v", err, rep.ScanFindings, rep.KeyBucketDamaged)
	}
	unknown := 0
	for _, k := range rep.Keys {
		if k.Key.State == history.Unknown {
			unknown++
		}
	}
	r, _ := extracted(t, ExitDamage, dir, "--prefix", kube.RegistryPrefix, "--deleted", "--encryption-config", enc)
	for _, o := range r.Objects {
		if _, live := truth.Final[o.Key]; live {
			t.Errorf("damaged db: %s is live, but extract --deleted lists it", o.Key)
		}
	}
	t.Logf("damaged: %d keys, %d unknown; extract --deleted: %d objects, %d uncertain keys left out", len(rep.Keys), unknown, len(r.Objects), len(r.Uncertain))
}

// TestHistoryRunningEtcd: history reads the db of a running etcd (which
// holds bbolt's lock) and finds every live object under a prefix, at the
// revision the client reads; writes while it reads are reported, never
// fatal. extract --rev R above the compaction revision gives exactly the
// objects etcd served at R.
func TestHistoryRunningEtcd(t *testing.T) {
	dir, _, truth := kubeDir(t)
	srv, err := fixtures.StartEtcd(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	prefix := "/registry/deployments/team-3/"
	code, out, stderr := runCLI("history", dir, "--prefix", prefix, "--json")
	if code != ExitClean && code != ExitDamage {
		t.Fatalf("history on a running etcd: exit %d\n%s", code, stderr)
	}
	var rep historyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, k := range rep.Keys {
		if k.Key.State == history.Live {
			live++
			if vs := k.Versions; vs[len(vs)-1].ModRevision != truth.Final[k.Key.Key].ModRevision {
				t.Fatalf("%s: live at %d, etcd serves %d", k.Key.Key, vs[len(vs)-1].ModRevision, truth.Final[k.Key.Key].ModRevision)
			}
		}
	}
	want := 0
	for k := range truth.Live {
		if strings.HasPrefix(k, prefix) {
			want++
		}
	}
	if live != want || want == 0 {
		t.Fatalf("%d live keys under %s, etcd holds %d", live, prefix, want)
	}

	at := truth.CompactRev + 40
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := srv.Client().Get(ctx, kube.RegistryPrefix, clientv3.WithPrefix(), clientv3.WithRev(at))
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]int64{}
	for _, kv := range resp.Kvs {
		served[string(kv.Key)] = kv.ModRevision
	}
	// Stopped first: a running etcd may write while extract reads, and
	// then the report rightly says the file changed (exit 1).
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	rep2, _ := extracted(t, ExitClean, dir, "--prefix", kube.RegistryPrefix, "--rev", strconv.FormatInt(at, 10), "--encryption-config", encConfigFor(t))
	if len(rep2.Objects) != len(served) || len(rep2.Missing) != 0 || len(served) == 0 {
		t.Fatalf("--rev %d: %d objects (%d missing), etcd serves %d", at, len(rep2.Objects), len(rep2.Missing), len(served))
	}
	for _, o := range rep2.Objects {
		if served[o.Key] != o.Revision || o.NewerMayBeLost {
			t.Fatalf("--rev %d: %s at %d (unsure %v), etcd serves %d", at, o.Key, o.Revision, o.NewerMayBeLost, served[o.Key])
		}
	}
}

func encConfigFor(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "enc.yaml")
	if err := fixtures.WriteKubeEncryptionConfig(p); err != nil {
		t.Fatal(err)
	}
	return p
}
