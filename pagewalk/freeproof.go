package pagewalk

import "fmt"

// FreelistProof returns the pages the walked meta's freelist lists, or why
// there is no such proof. bbolt (NoFreelistSync false, its default) writes
// at every commit the free pages and the pages pending from the last
// transactions into the freelist page. Then a well-formed page below the
// high-water mark that no tree reaches and the freelist does not list was
// part of the last committed tree: damage cut it off, and its records are
// current. A listed page may hold any older version.
//
// The proof needs a usable meta (its freelist pointer), a synced freelist
// (etcd runs with NoFreelistSync: none), a freelist page that reads, and a
// freelist that agrees with the tree (it lists no page the tree reaches).
func (r *Result) FreelistProof() (free map[uint64]bool, why string) {
	rep := r.Report
	if rep.Chosen < 0 {
		return nil, "no usable meta page: the freelist that would prove which pages were live is unknown"
	}
	m := rep.Metas[rep.Chosen].Meta
	if m.Freelist == NoFreelist {
		return nil, "the file runs with NoFreelistSync (no freelist on disk): nothing proves which unreached pages were live"
	}
	for _, f := range rep.Findings {
		switch f.Kind {
		case KindFreelistMalformed:
			return nil, fmt.Sprintf("the freelist page %d is damaged (%s): nothing proves which unreached pages were live", m.Freelist, f.Message)
		case KindFreelistReachable:
			return nil, fmt.Sprintf("the freelist (page %d) lists pages the tree reaches: it does not describe this tree", m.Freelist)
		}
	}
	if other := rep.Metas[1-rep.Chosen]; !other.Valid || other.Meta.Txid > m.Txid {
		// The walked tree may predate the last commit, whose new pages
		// would look orphaned while being newer than it.
		return nil, fmt.Sprintf("meta %d may have been the last commit (invalid, or a higher txid that did not walk): the tree and freelist walked (meta %d) may be older than the data", other.Page, rep.Chosen)
	}
	n, err := r.File.ReadNode(m.Freelist)
	if err != nil || n.Flags != FlagFreelist || n.Header.ID != m.Freelist {
		return nil, fmt.Sprintf("the freelist page %d does not read as one", m.Freelist)
	}
	ids, fe := FreelistIDs(n)
	if fe != nil {
		return nil, fmt.Sprintf("the freelist page %d is damaged: %s", m.Freelist, fe.Msg)
	}
	free = make(map[uint64]bool, len(ids))
	for _, id := range ids {
		free[id] = true
	}
	return free, ""
}
