package pagewalk

// When no meta is usable, bbolt's own freelist pages still tell which root
// candidate is current in a file that syncs its freelist (most bbolt users;
// not etcd). The last commit's tree and its freelist page partition the
// file: no page the tree reaches is listed free, and together they account
// for every page below the high-water mark. An older freelist page with an
// older root does neither: pages were reused since, so its tree runs into
// pages it lists, or accounts for less of the file. Older root copies still
// on disk are listed free by the newest freelist.

// maxFreelistPages and maxRootPairs bound the pairs compared: each costs a
// walk over census data, and a hostile file could be all freelist pages.
const (
	maxFreelistPages = 64
	maxRootPairs     = 256
)

// newestTree returns the root candidate and freelist page that fit each
// other best (no reached page listed free, the most pages accounted for),
// with the ids that freelist lists; root 0 when no pair fits.
func (c *census) newestTree(cands []uint64) (root uint64, free map[uint64]bool, tied map[uint64]bool) {
	var fls []uint64
	for p := range c.sums {
		s := c.sums[p]
		if s.state == stateWellFormed && s.typ == TypeFreelist {
			if fls = append(fls, uint64(p)); len(fls) > maxFreelistPages {
				return 0, nil, nil
			}
		}
	}
	best, bestStale, bestReached, pairs := -1, -1, -1, 0
	type pair struct {
		root         uint64
		score, stale int
	}
	var fitting []pair
	for _, fp := range fls {
		n, err := c.f.ReadNode(fp)
		if err != nil {
			continue
		}
		ids, fe := FreelistIDs(n)
		if fe != nil {
			continue
		}
		set := make(map[uint64]bool, len(ids))
		for _, id := range ids {
			set[id] = true
		}
		if set[fp] {
			continue // a freelist never lists itself
		}
		for _, r := range cands {
			if set[r] || r == fp {
				continue
			}
			if pairs++; pairs > maxRootPairs {
				return root, free, tied
			}
			reached, ok := c.treePages(r, set)
			if !ok {
				continue
			}
			// Older pairs can account for as many pages (their pages not
			// yet reused); the newest freelist lists their roots and
			// freelist pages, which an older one cannot have listed
			// unless those pages were free then.
			stale := 0
			for _, q := range cands {
				if q != r && set[q] {
					stale++
				}
			}
			for _, q := range fls {
				if q != fp && set[q] {
					stale++
				}
			}
			// A file whose last commits alternate between two sets of
			// pages (bbolt reuses at once the pages the last commit freed)
			// holds two pairs that fit equally: then the larger tree is
			// taken (most commits add), and the report names the other.
			score := reached + len(set) + 1 + int(c.sums[fp].overflow)
			fitting = append(fitting, pair{r, score, stale})
			if score > best || (score == best && (stale > bestStale || (stale == bestStale && reached > bestReached))) {
				best, bestStale, bestReached, root, free = score, stale, reached, r, set
			}
		}
	}
	tied = map[uint64]bool{}
	for _, p := range fitting {
		if p.root != root && p.score == best && p.stale == bestStale {
			tied[p.root] = true
		}
	}
	return root, free, tied
}

// treePages counts the pages of the tree under root (nested buckets and
// overflow pages included) from the census alone; ok is false when the
// tree reaches a page that is not a well-formed node, is listed in free,
// or is reached twice.
func (c *census) treePages(root uint64, free map[uint64]bool) (int, bool) {
	seen := map[uint64]bool{}
	stack := []uint64{root}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p < 2 || p >= uint64(len(c.sums)) || seen[p] || free[p] {
			return 0, false
		}
		s := c.sums[p]
		if s.state != stateWellFormed || s.info < 0 || (s.typ != TypeBranch && s.typ != TypeLeaf) {
			return 0, false
		}
		for i := uint64(0); i <= uint64(s.overflow); i++ {
			if seen[p+i] || free[p+i] {
				return 0, false
			}
			seen[p+i] = true
		}
		if s.typ == TypeBranch {
			bi := c.branches[s.info]
			for _, e := range c.belems[bi.first : bi.first+bi.n] {
				stack = append(stack, e.child)
			}
			continue
		}
		li := c.leaves[s.info]
		for i := li.bfirst; i < li.bfirst+li.bn; i++ {
			if r := c.lbuckets[i].hdr.Root; r != 0 {
				stack = append(stack, r)
			}
		}
	}
	return len(seen), true
}
