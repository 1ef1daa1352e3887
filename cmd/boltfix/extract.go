package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/boltfix/boltfix/outfile"
	"io"
	"sort"

	"github.com/boltfix/boltfix/history"
	"github.com/boltfix/boltfix/kube"
	"github.com/boltfix/boltfix/salvage"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// ExtractSchema names the report `boltfix extract --json` prints.
const ExtractSchema = "boltfix.extract/v1"

type extractOptions struct {
	prefix           string
	deleted          bool
	rev              int64
	output           string
	out              string
	force            bool
	keepServerFields bool
	encryptionConfig string
	json             bool
}

func (o *extractOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.prefix, "prefix", "", "the etcd key prefix of the objects, e.g. /registry/configmaps/prod/ (required)")
	f.BoolVar(&o.deleted, "deleted", false, "the objects whose key no longer exists, each at the newest version on disk")
	f.Int64Var(&o.rev, "rev", 0, "the objects as of this revision, as far as the file holds them")
	f.StringVarP(&o.output, "output", "o", "yaml", "manifest format: yaml (--- documents) or json (a v1 List)")
	f.StringVar(&o.out, "out", "", "write the manifests to this file (0600, via temp file and rename) instead of stdout")
	f.BoolVar(&o.force, "force", false, "replace --out if it exists")
	f.BoolVar(&o.keepServerFields, "keep-server-fields", false, "keep resourceVersion, uid, managedFields, creationTimestamp, generation and status")
	f.StringVar(&o.encryptionConfig, "encryption-config", "", "kube-apiserver's EncryptionConfiguration file, to decrypt aescbc, aesgcm and secretbox values")
	f.BoolVar(&o.json, "json", false, "print the report as one JSON document (schema "+ExtractSchema+") on stdout; needs --out")
	_ = cmd.MarkFlagRequired("prefix")
}

func (o *extractOptions) Validate() error {
	if o.output != "yaml" && o.output != "json" {
		return fmt.Errorf("-o %q: yaml or json", o.output)
	}
	if o.rev < 0 {
		return fmt.Errorf("--rev %d: a revision is positive", o.rev)
	}
	if o.json && o.out == "" {
		return errors.New("--json prints the report on stdout: give --out for the manifests")
	}
	return nil
}

func init() { register(newExtractCommand) }

func newExtractCommand() *cobra.Command {
	var o extractOptions
	cmd := &cobra.Command{
		Use:   "extract DB|DATA_DIR --prefix P [--deleted] [--rev R] [-o yaml|json]",
		Short: "Kubernetes objects under a prefix, as manifests for kubectl apply (deleted ones too)",
		Long: `extract decodes the Kubernetes objects under --prefix from every version
found anywhere in the db (see boltfix history) and prints them as manifests
ready for kubectl apply: --- separated YAML documents, or a v1 List with
-o json.

  (default)   the live objects
  --deleted   the objects whose key no longer exists, each at the newest
              version found on disk (the report says when a newer version
              may have existed and was lost)
  --rev R     the objects as of revision R, as far as the file holds them

Fields the server sets (resourceVersion, uid, managedFields,
creationTimestamp, generation, status) are stripped unless
--keep-server-fields. Values encrypted at rest are decrypted with
--encryption-config (aescbc, aesgcm, secretbox); objects that cannot be
decoded are listed in the report with the reason. Secrets under the prefix
are printed like any other object: the report on stderr counts them, and
--out files are created 0600. DB is never modified and no lock is taken.

EXIT STATUS
  0  every object selected was decoded; the file is undamaged and did not
     change while read
  1  some objects could not be decoded, the scan found damage, or the file
     changed while read (the report says which)
  2  could not run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return cantRun(err)
			}
			return extractFunc(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// extractReport is the boltfix.extract/v1 document.
type extractReport struct {
	Schema   string            `json:"schema"`
	Input    string            `json:"input"`
	Output   string            `json:"output"`
	Prefix   string            `json:"prefix"`
	Selected string            `json:"selected"` // live, deleted, rev
	Rev      int64             `json:"rev,omitempty"`
	Format   string            `json:"format"`
	Objects  []extractedObject `json:"objects"`
	// Secrets counts the Secrets among the objects printed.
	Secrets     int           `json:"secrets"`
	Undecodable []extractSkip `json:"undecodable"`
	// Missing: keys the selection wants whose version is not on disk
	// (a deleted key with only its tombstone left; a key that existed at
	// --rev with no record of that version).
	Missing []extractSkip `json:"missing"`
	// Uncertain: keys left out because they lie where the tree is damaged:
	// whether they are live or deleted cannot be told.
	Uncertain       []string `json:"uncertain"`
	CompactRevision int64    `json:"compact_revision"`
	ScanFindings    int      `json:"scan_findings"`
	FileChanged     bool     `json:"file_changed"`
}

type extractedObject struct {
	Key       string        `json:"key"`
	Revision  int64         `json:"revision"`
	Object    kube.Object   `json:"object"`
	State     history.State `json:"state"`
	DeletedAt int64         `json:"deleted_at,omitempty"`
	// NewerMayBeLost: --deleted: a newer version may have existed and
	// been lost; --rev: the file cannot vouch that this version was the
	// one in effect at that revision.
	NewerMayBeLost bool             `json:"newer_may_be_lost"`
	Encryption     *kube.Encryption `json:"encryption,omitempty"`
}

type extractSkip struct {
	Key      string       `json:"key"`
	Revision int64        `json:"revision,omitempty"`
	Object   *kube.Object `json:"object,omitempty"`
	Reason   string       `json:"reason"`
}

func extractFunc(ctx context.Context, stdout, stderr io.Writer, arg string, o extractOptions) error {
	var kr *kube.Keyring
	if o.encryptionConfig != "" {
		var err error
		if kr, err = kube.LoadEncryptionConfig(o.encryptionConfig); err != nil {
			return cantRun(err)
		}
	}
	path, err := resolveDB(arg)
	if err != nil {
		return cantRun(err)
	}
	if o.out != "" {
		if err := salvage.CheckOutput(path, o.out, o.force); err != nil {
			return cantRun(err)
		}
	}
	bar := newProgress(stderr)
	defer bar.Done()
	res, path, err := scanDB(ctx, bar, path)
	if err != nil {
		return cantRun(err)
	}
	defer res.File.Close()
	h, err := collect(ctx, bar, res, o.prefix, false)
	bar.Done()
	if err != nil {
		return cantRun(err)
	}
	rep := &extractReport{Schema: ExtractSchema, Input: path, Output: o.out, Prefix: o.prefix, Selected: "live", Rev: o.rev,
		Format: o.output, Objects: []extractedObject{}, Undecodable: []extractSkip{}, Missing: []extractSkip{}, Uncertain: []string{},
		CompactRevision: h.CompactRevision, ScanFindings: len(res.Report.Findings), FileChanged: h.FileChanged}
	switch {
	case o.rev > 0 && o.deleted:
		rep.Selected = "deleted at rev"
	case o.rev > 0:
		rep.Selected = "rev"
	case o.deleted:
		rep.Selected = "deleted"
	}
	var items []map[string]any
	for _, k := range h.Keys {
		mayBeLost := o.deleted && k.NewerMayBeLost
		v := selectVersion(k, o, rep, &mayBeLost)
		if v == nil {
			continue
		}
		obj, err := kube.Decode([]byte(k.Key), v.Value, kr)
		if err != nil || obj == nil || obj.Content == nil {
			reason := "not a Kubernetes value"
			if err != nil {
				reason = err.Error()
			}
			rep.Undecodable = append(rep.Undecodable, extractSkip{Key: k.Key, Revision: v.Revision.Main, Object: obj, Reason: reason})
			continue
		}
		eo := extractedObject{Key: k.Key, Revision: v.Revision.Main, Object: *obj, State: v.State, DeletedAt: k.DeletedAt,
			NewerMayBeLost: mayBeLost, Encryption: obj.Encryption}
		rep.Objects = append(rep.Objects, eo)
		if obj.Kind == "Secret" {
			rep.Secrets++
		}
		items = append(items, obj.Manifest(o.keepServerFields, v.ModRevision))
	}
	doc, err := renderManifests(items, o.output)
	if err != nil {
		return cantRun(err)
	}
	if o.out != "" {
		if err := writeFileAtomic(o.out, doc); err != nil {
			return cantRun(err)
		}
	} else if _, err := stdout.Write(doc); err != nil {
		return cantRun(err)
	}
	if o.json {
		if err := writeJSON(stdout, rep); err != nil {
			return cantRun(err)
		}
	} else {
		printExtract(stderr, rep)
	}
	if len(rep.Undecodable) > 0 || rep.ScanFindings > 0 || rep.FileChanged {
		return damaged()
	}
	return nil
}

// selectVersion picks the version of k the options ask for, or nil; keys
// that the selection wants but cannot have are noted in rep.
// mayBeLost is set when the file cannot vouch that the version picked is
// the one in effect (--rev below what the tree holds).
func selectVersion(k *history.Key, o extractOptions, rep *extractReport, mayBeLost *bool) *history.Version {
	if o.deleted {
		switch k.State {
		case history.Live:
			return nil
		case history.Unknown:
			rep.Uncertain = append(rep.Uncertain, k.Key)
			return nil
		}
	}
	if o.rev > 0 {
		v, lost, uncertain := k.At(o.rev, rep.CompactRevision)
		if lost {
			rep.Missing = append(rep.Missing, extractSkip{Key: k.Key, Reason: fmt.Sprintf("existed at revision %d; no record of that version is on disk", o.rev)})
		}
		if uncertain {
			*mayBeLost = true
		}
		return v
	}
	switch k.State {
	case history.Live:
		if o.deleted {
			return nil
		}
		return &k.Versions[len(k.Versions)-1]
	case history.Deleted:
		if !o.deleted {
			return nil
		}
		v := k.Newest()
		if v == nil {
			rep.Missing = append(rep.Missing, extractSkip{Key: k.Key, Reason: fmt.Sprintf("deleted at revision %d; only its tombstone is on disk", k.DeletedAt)})
		}
		return v
	default:
		if !o.deleted {
			rep.Uncertain = append(rep.Uncertain, k.Key)
		}
		return nil
	}
}

// renderManifests renders items as a v1 List (json) or as --- separated
// YAML documents, in key order (the order they came in).
func renderManifests(items []map[string]any, format string) ([]byte, error) {
	if format == "json" {
		if items == nil {
			items = []map[string]any{}
		}
		list := map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""}, "items": items}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(list); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	var b bytes.Buffer
	for _, it := range items {
		y, err := yaml.Marshal(it)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}

// writeFileAtomic writes data to a 0600 file through a synced temp file:
// manifests may hold secrets, and a crash leaves no half-written file. The
// caller has already refused an existing path unless --force.
func writeFileAtomic(path string, data []byte) error {
	return outfile.WriteFile(path, data, 0o600, true)
}

func printExtract(w io.Writer, r *extractReport) {
	kinds := map[string]int{}
	lost := 0
	for _, o := range r.Objects {
		kinds[o.Object.Kind]++
		if o.NewerMayBeLost {
			lost++
		}
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "boltfix extract %s --prefix %s: %d %s objects", r.Input, r.Prefix, len(r.Objects), r.Selected)
	for i, k := range names {
		sep := ", "
		if i == 0 {
			sep = " ("
		}
		fmt.Fprintf(w, "%s%d %s", sep, kinds[k], k)
	}
	if len(names) > 0 {
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
	if r.Output != "" {
		fmt.Fprintf(w, "written to %s (mode 0600)\n", r.Output)
	}
	if r.Secrets > 0 {
		fmt.Fprintf(w, "%d Secrets printed: their data is only base64-encoded; keep the output safe\n", r.Secrets)
	}
	if lost > 0 {
		if r.Rev > 0 {
			fmt.Fprintf(w, "%d objects come from free pages below the compaction revision: a version in effect at %d may have been lost (see boltfix history)\n", lost, r.Rev)
		} else {
			fmt.Fprintf(w, "%d objects are at the newest version found on disk, but a newer version may have existed and been lost (see boltfix history)\n", lost)
		}
	}
	for _, u := range r.Undecodable {
		fmt.Fprintf(w, "could not decode %s (revision %d): %s\n", u.Key, u.Revision, u.Reason)
	}
	for _, m := range r.Missing {
		fmt.Fprintf(w, "missing %s: %s\n", m.Key, m.Reason)
	}
	if len(r.Uncertain) > 0 {
		fmt.Fprintf(w, "%d keys lie where the tree is damaged and were left out (live or deleted cannot be told): see boltfix history\n", len(r.Uncertain))
	}
	if r.ScanFindings > 0 {
		fmt.Fprintf(w, "the scan found %d pieces of damage: boltfix scan %s\n", r.ScanFindings, r.Input)
	}
	if r.FileChanged {
		fmt.Fprintln(w, "WARNING: the file changed while it was read (is etcd running?)")
	}
	if r.Rev > 0 && r.Rev < r.CompactRevision {
		fmt.Fprintf(w, "revision %d is below the compaction revision %d: versions compaction removed are there only where a free page still holds them\n", r.Rev, r.CompactRevision)
	}
}
