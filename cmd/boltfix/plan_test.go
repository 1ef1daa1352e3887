package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/repair"
)

// repair --dry-run prints the plan the real run then follows: for each
// damage class, the steps the run reports executing are exactly the plan's
// steps, in order; the strategy is the one the fixture's history calls
// for; and the dry run writes nothing (no output, no temp dir next to it,
// the input unchanged).
func TestRepairDryRunIsThePlanThatRuns(t *testing.T) {
	workloads := map[string]fixtures.Workload{
		"default": fixtures.DefaultWorkload(),
		"older":   fixtures.OlderDBWorkload(),
		"purged":  fixtures.PurgedWALWorkload(),
	}
	halfZero := func(dir string, _ *fixtures.Truth) error {
		_, err := fixtures.HalfZeroBranch(fixtures.DBPath(dir), "key", 0)
		return err
	}
	for _, tc := range []struct {
		name, workload string
		damage         func(dir string, truth *fixtures.Truth) error
		// want is the strategy the fixture's history calls for: the
		// default and older workloads keep the whole WAL from index 1;
		// the purged one does not; no WAL leaves the db alone.
		want repair.Strategy
		// startCheck: run the real repair with its etcd start check (the
		// others skip it to save time; the plan then lacks that step).
		startCheck bool
	}{
		{"healthy", "default", func(string, *fixtures.Truth) error { return nil }, repair.StrategyFullReplay, true},
		{"half-zeroed-branch", "default", halfZero, repair.StrategyFullReplay, false},
		{"both-metas-bad", "default", func(dir string, _ *fixtures.Truth) error {
			_, err := fixtures.BothMetasBad(fixtures.DBPath(dir))
			return err
		}, repair.StrategyFullReplay, false},
		{"missing-db", "default", func(dir string, _ *fixtures.Truth) error { _, err := fixtures.RemoveDB(dir); return err }, repair.StrategyFullReplay, false},
		// The torn tail takes the last committed entries: the db's
		// consistent_index is above the WAL's commit, so a replay from
		// index 1 would fall short of the db.
		{"torn-wal-tail", "default", func(dir string, _ *fixtures.Truth) error { _, err := fixtures.TornWALTail(dir); return err }, repair.StrategyDBAndWAL, false},
		{"older-db", "older", func(dir string, tr *fixtures.Truth) error { _, err := fixtures.OlderDB(dir, tr.OlderDB); return err }, repair.StrategyFullReplay, false},
		{"purged-wal-half-zeroed", "purged", halfZero, repair.StrategyDBAndWAL, true},
		{"purged-wal-missing-db", "purged", func(dir string, _ *fixtures.Truth) error { _, err := fixtures.RemoveDB(dir); return err }, repair.StrategyWALOnly, false},
		{"no-wal", "default", func(dir string, _ *fixtures.Truth) error { return os.RemoveAll(filepath.Join(dir, "member", "wal")) }, repair.StrategyDBOnly, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, truth := fixtures.Cached(t, tc.workload, workloads[tc.workload])
			if err := tc.damage(dir, truth); err != nil {
				t.Fatal(err)
			}
			before := hashTree(t, dir)
			parent := t.TempDir()
			out := filepath.Join(parent, "repaired")
			args := []string{"repair", dir, "--out", out}
			if !tc.startCheck {
				args = append(args, "--skip-start-check")
			}

			code, stdout, stderr := runCLI(append(args, "--dry-run", "--json")...)
			var plan repair.Plan
			if err := json.Unmarshal([]byte(stdout), &plan); err != nil || code != ExitClean {
				t.Fatalf("dry run: exit %d, %v\n%s", code, err, stderr)
			}
			if plan.Schema != repair.PlanSchema || plan.Strategy != tc.want || len(plan.Why) == 0 {
				t.Fatalf("plan: schema %q, strategy %q (want %q), why %q", plan.Schema, plan.Strategy, tc.want, plan.Why)
			}
			code, human, stderr := runCLI(append(args, "--dry-run")...)
			if code != ExitClean || !strings.Contains(human, "DRY RUN, nothing written") || !strings.Contains(human, string(plan.Strategy)) {
				t.Fatalf("human dry run: exit %d\n%s\n%s", code, human, stderr)
			}
			for _, s := range plan.Steps {
				if !strings.Contains(human, string(s.Name)) {
					t.Errorf("human dry run lacks step %q:\n%s", s.Name, human)
				}
			}
			if ents, _ := os.ReadDir(parent); len(ents) > 0 {
				t.Fatalf("the dry run wrote next to the output: %v", ents)
			}
			if hashTree(t, dir) != before {
				t.Fatal("the dry run changed its input")
			}

			code, stdout, stderr = runCLI(append(args, "--json")...)
			var rep repair.Report
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code == ExitCantRun {
				t.Fatalf("repair: exit %d, %v\n%s", code, err, stderr)
			}
			var planned, ran []string
			for _, s := range plan.Steps {
				planned = append(planned, string(s.Name))
			}
			for i, s := range rep.Steps {
				ran = append(ran, string(s.Name))
				// Only a conditional step may be passed over.
				if !s.Ran && (i >= len(plan.Steps) || plan.Steps[i].If == "") {
					t.Errorf("unconditional step %q did not run: %s", s.Name, s.Result)
				}
			}
			if strings.Join(planned, " ") != strings.Join(ran, " ") {
				t.Errorf("planned steps %q, executed %q", planned, ran)
			}
			if rep.Strategy != plan.Strategy {
				t.Errorf("report strategy %q, plan %q", rep.Strategy, plan.Strategy)
			}
			// What the run did is what the strategy promised.
			switch r := rep.Replay; plan.Strategy {
			case repair.StrategyFullReplay:
				if r == nil || r.ConsistentIndexBefore != 0 || rep.Audit != nil {
					t.Errorf("full replay: replay %+v, audit %+v", r, rep.Audit)
				}
			case repair.StrategyDBAndWAL:
				if rep.Audit == nil || !rep.DB.Present || !rep.WAL.Present {
					t.Errorf("db and WAL: audit %+v, db %v, wal %v", rep.Audit, rep.DB.Present, rep.WAL.Present)
				}
			case repair.StrategyWALOnly:
				if r == nil || rep.DB.Present {
					t.Errorf("WAL only: replay %+v, db present %v", r, rep.DB.Present)
				}
			case repair.StrategyDBOnly:
				if r != nil || rep.WAL.Present || rep.Complete {
					t.Errorf("db only: replay %+v, wal present %v, complete %v", r, rep.WAL.Present, rep.Complete)
				}
			}
			if _, err := os.Stat(filepath.Join(out, "member", "snap", "db")); err != nil {
				t.Errorf("the real run wrote no db: %v", err)
			}
			t.Logf("%s: %s", plan.Strategy, strings.Join(ran, " "))
		})
	}
}

// A dry run on one member of a multi-member cluster is the refusal: exit
// 1, no steps, nothing written.
func TestRepairDryRunRefusal(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	dir := ct.Members[1].Dir
	before := hashTree(t, dir)
	parent := t.TempDir()
	code, stdout, stderr := runCLI("repair", dir, "--out", filepath.Join(parent, "repaired"), "--dry-run", "--json")
	var plan repair.Plan
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil || code != ExitDamage {
		t.Fatalf("exit %d, %v\n%s", code, err, stderr)
	}
	if plan.Refused == nil || plan.Strategy != repair.StrategyRefused || len(plan.Steps) != 0 {
		t.Fatalf("plan: refused %+v, strategy %q, steps %v", plan.Refused, plan.Strategy, plan.Steps)
	}
	if ents, _ := os.ReadDir(parent); len(ents) > 0 {
		t.Fatalf("the dry run wrote: %v", ents)
	}
	if hashTree(t, dir) != before {
		t.Fatal("the dry run changed its input")
	}
}

// repair DIR1 DIR2 DIR3 --dry-run prints the cluster plan and each
// member's plan, writes nothing, and the real run then executes exactly
// the cluster plan's steps; the chosen member's repair executes exactly
// that member's plan.
func TestRepairDryRunCluster(t *testing.T) {
	ct := fixtures.CachedCluster(t, "three", 3, fixtures.ClusterWorkload())
	if _, err := fixtures.HalfZeroBranch(fixtures.DBPath(ct.Members[1].Dir), "key", 0); err != nil {
		t.Fatal(err)
	}
	var befores []string
	args := []string{"repair"}
	for _, m := range ct.Members {
		args = append(args, m.Dir)
		befores = append(befores, hashTree(t, m.Dir))
	}
	parent := t.TempDir()
	args = append(args, "--out", filepath.Join(parent, "out"), "--skip-start-check", "--initial-cluster-token", fixtures.ClusterToken)

	code, stdout, stderr := runCLI(append(args, "--dry-run", "--json")...)
	var plan repair.ClusterPlan
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil || code != ExitClean {
		t.Fatalf("dry run: exit %d, %v\n%s", code, err, stderr)
	}
	if plan.Schema != repair.ClusterPlanSchema || len(plan.Members) != len(ct.Members) || len(plan.Sources) != len(ct.Members) {
		t.Fatalf("plan: schema %q, %d member plans, %d sources", plan.Schema, len(plan.Members), len(plan.Sources))
	}
	for _, m := range plan.Members {
		if m.Error != "" || len(m.Steps) == 0 {
			t.Errorf("member %s: no plan: %s", m.Name, m.Error)
		}
	}
	code, human, _ := runCLI(append(args, "--dry-run")...)
	if code != ExitClean || !strings.Contains(human, "DRY RUN, nothing written") {
		t.Fatalf("human dry run: exit %d\n%s", code, human)
	}
	checkWidth(t, "cluster dry run", human)
	if ents, _ := os.ReadDir(parent); len(ents) > 0 {
		t.Fatalf("the dry run wrote: %v", ents)
	}
	for i, m := range ct.Members {
		if hashTree(t, m.Dir) != befores[i] {
			t.Fatalf("the dry run changed %s", m.Dir)
		}
	}

	code, stdout, stderr = runCLI(append(args, "--json")...)
	var rep repair.ClusterReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code == ExitCantRun {
		t.Fatalf("repair: exit %d, %v\n%s", code, err, stderr)
	}
	names := func(steps []repair.Step) string {
		var s []string
		for _, x := range steps {
			s = append(s, string(x.Name))
		}
		return strings.Join(s, " ")
	}
	ran := func(steps []repair.StepResult) string {
		var s []string
		for _, x := range steps {
			s = append(s, string(x.Name))
		}
		return strings.Join(s, " ")
	}
	if names(plan.Steps) != ran(rep.Steps) {
		t.Errorf("cluster: planned %q, executed %q", names(plan.Steps), ran(rep.Steps))
	}
	chosen := -1
	for i, s := range rep.Sources {
		if s.Chosen {
			chosen = i
		}
	}
	if chosen < 0 || rep.Repair == nil {
		t.Fatalf("no chosen member: %+v", rep.Sources)
	}
	if mp := plan.Members[chosen]; names(mp.Steps) != ran(rep.Repair.Steps) || mp.Strategy != rep.Repair.Strategy {
		t.Errorf("chosen member %s: planned %s %q, executed %s %q", mp.Name, mp.Strategy, names(mp.Steps), rep.Repair.Strategy, ran(rep.Repair.Steps))
	}
}
