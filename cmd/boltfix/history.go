package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/boltfix/boltfix/history"
	"github.com/boltfix/boltfix/kube"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/spf13/cobra"
)

// HistorySchema names the JSON document `boltfix history --json` prints.
const HistorySchema = "boltfix.history/v1"

type historyOptions struct {
	prefix string
	json   bool
}

func (o *historyOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.prefix, "prefix", "", "every key starting with this (default: every key)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the report as one JSON document (schema "+HistorySchema+")")
}

func init() { register(newHistoryCommand) }

func newHistoryCommand() *cobra.Command {
	var o historyOptions
	cmd := &cobra.Command{
		Use:   "history DB|DATA_DIR [--prefix P | KEY]",
		Short: "Every version of every key found anywhere in the file, with its state",
		Long: `history finds every version of the etcd keys under --prefix (or of KEY)
anywhere in the db: the records the live tree holds and those still lying on
free, orphan and past-the-high-water-mark pages. Each version is listed with
its revision, create/mod revision, version, where it was found (pages, and
whether the live tree reaches it) and its state:

  live        the key's newest record, in the live tree
  superseded  a newer version exists; etcd still holds this one
  compacted   a newer version exists; compaction removed this one
  deleted     ended by a delete (the tombstone's revision when found; a key
              the intact tree no longer holds was deleted even when its
              tombstone was compacted away)
  unknown     it lies where the tree is damaged: a newer version may be lost

Kubernetes values are named by kind, namespace and name. DB is never
modified and no lock is taken, so it works on the db of a running etcd (the
report says when the file changed while it was read).

EXIT STATUS
  0  the file is undamaged and did not change while read
  1  the scan found damage, or the file changed while read
  2  could not run`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			exact := len(args) == 2
			if exact && o.prefix != "" {
				return cantRun(fmt.Errorf("give --prefix or KEY, not both"))
			}
			prefix := o.prefix
			if exact {
				prefix = args[1]
			}
			return historyFunc(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], prefix, exact, o)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// historyReport is the boltfix.history/v1 document.
type historyReport struct {
	Schema string `json:"schema"`
	Input  string `json:"input"`
	Prefix string `json:"prefix"`
	Exact  bool   `json:"exact"`
	// ScanFindings counts the damage the scan found (see boltfix scan).
	ScanFindings int `json:"scan_findings"`
	*history.Result
	Keys []historyKey `json:"keys"`
}

type historyKey struct {
	*history.Key
	Versions []historyVersion `json:"versions"`
}

type historyVersion struct {
	history.Version
	ValueSize int `json:"value_size"`
	// Object names the Kubernetes object the value holds, when it does.
	Object *kube.Object `json:"object,omitempty"`
	// Undecodable says why a Kubernetes value did not decode.
	Undecodable string `json:"undecodable,omitempty"`
}

// scanDB opens and scans the db behind arg, with a progress bar; the
// caller ends the bar and closes res.File.
func scanDB(ctx context.Context, bar *progress, arg string) (*pagewalk.Result, string, error) {
	path, err := resolveDB(arg)
	if err != nil {
		return nil, "", err
	}
	f, err := pagewalk.Open(path)
	if err != nil {
		return nil, "", err
	}
	bar.Phase("scanning", int64(f.PageCount()))
	res, err := f.Scan(pagewalk.Options{Progress: bar, Context: ctx})
	if err != nil {
		f.Close()
		return nil, "", err
	}
	return res, path, nil
}

// collect runs history.Collect with a progress phase over every page it
// may read.
func collect(ctx context.Context, bar *progress, res *pagewalk.Result, prefix string, exact bool) (*history.Result, error) {
	bar.Phase("collecting", int64(res.File.PageCount()))
	return history.Collect(res, history.Options{Prefix: []byte(prefix), Exact: exact, Progress: bar, Context: ctx})
}

func historyFunc(ctx context.Context, stdout, stderr io.Writer, arg, prefix string, exact bool, o historyOptions) error {
	bar := newProgress(stderr)
	defer bar.Done()
	res, path, err := scanDB(ctx, bar, arg)
	if err != nil {
		return cantRun(err)
	}
	defer res.File.Close()
	h, err := collect(ctx, bar, res, prefix, exact)
	bar.Done()
	if err != nil {
		return cantRun(err)
	}
	rep := historyReport{Schema: HistorySchema, Input: path, Prefix: prefix, Exact: exact,
		ScanFindings: len(res.Report.Findings), Result: h, Keys: make([]historyKey, 0, len(h.Keys))}
	for _, k := range h.Keys {
		hk := historyKey{Key: k, Versions: make([]historyVersion, 0, len(k.Versions))}
		for _, v := range k.Versions {
			hv := historyVersion{Version: v, ValueSize: len(v.Value)}
			if !v.Tombstone && len(v.Value) > 0 {
				obj, err := kube.Decode([]byte(k.Key), v.Value, nil)
				if obj != nil && (obj.Kind != "" || obj.Encryption != nil) {
					hv.Object = obj
				}
				if err != nil && obj != nil {
					hv.Undecodable = err.Error()
				}
			}
			hk.Versions = append(hk.Versions, hv)
		}
		rep.Keys = append(rep.Keys, hk)
	}
	if o.json {
		if err := writeJSON(stdout, rep); err != nil {
			return cantRun(err)
		}
	} else {
		printHistory(stdout, &rep)
	}
	if rep.ScanFindings > 0 || h.FileChanged {
		return damaged()
	}
	return nil
}

func printHistory(w io.Writer, r *historyReport) {
	what := "every key"
	switch {
	case r.Exact:
		what = "key " + r.Prefix
	case r.Prefix != "":
		what = "keys under " + r.Prefix
	}
	fmt.Fprintf(w, "boltfix history %s: %s\n", r.Input, what)
	fmt.Fprintf(w, "%d versions of %d keys (%d in the live tree, %d from %d carved pages); compaction revision %d\n",
		r.Records, len(r.Keys), r.Reached, r.Records-r.Reached, r.CarvedPages, r.CompactRevision)
	if r.ScanFindings > 0 {
		fmt.Fprintf(w, "the scan found %d pieces of damage (boltfix scan %s): versions where it lies are unknown\n", r.ScanFindings, r.Input)
	}
	if r.FileChanged {
		fmt.Fprintln(w, "WARNING: the file changed while it was read (is etcd running?): this report describes no single state of it")
	}
	for _, k := range r.Keys {
		state := string(k.State)
		if k.DeletedAt > 0 {
			state += " at " + strconv.FormatInt(k.DeletedAt, 10)
		}
		fmt.Fprintf(w, "\n%s  (%s)\n", k.Key.Key, state) // not section(): keys keep their case
		var rows [][]string
		for _, v := range k.Versions {
			where := "free page"
			if v.Reached {
				where = "live tree"
			}
			pages := make([]string, len(v.Pages))
			for i, p := range v.Pages {
				pages[i] = strconv.FormatUint(p, 10)
			}
			del := ""
			if v.DeletedAt > 0 && !v.Tombstone {
				del = strconv.FormatInt(v.DeletedAt, 10)
			}
			obj := ""
			switch {
			case v.Tombstone:
				obj = "(tombstone)"
			case v.Object != nil && v.Object.Kind != "":
				obj = v.Object.String()
			case v.Object != nil && v.Object.Encryption != nil:
				obj = "encrypted (" + v.Object.Encryption.Provider + " key " + v.Object.Encryption.KeyName + ")"
			}
			rows = append(rows, []string{v.Revision.String(), strconv.FormatInt(v.CreateRevision, 10), strconv.FormatInt(v.ModRevision, 10),
				strconv.FormatInt(v.Version.Version, 10), string(v.State), del, where + " " + strings.Join(pages, ","), clip(obj, 60)})
		}
		table(w, []string{"REVISION", "CREATE", "MOD", "VER", "STATE", "DELETED AT", "FOUND", "OBJECT"}, rows)
		if k.State == history.Deleted && k.Newest() != nil {
			fmt.Fprintf(w, "to get it back: boltfix extract %s --prefix %s --deleted\n", r.Input, k.Key.Key)
		}
	}
}
