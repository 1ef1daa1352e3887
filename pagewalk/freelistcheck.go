package pagewalk

import "fmt"

// freeSet returns the pages the freelist lists, or nil when the db runs
// with NoFreelistSync (every unreached page below the high-water mark is
// free) or the freelist cannot be read.
func (w *walker) freeSet(freelist uint64) map[uint64]bool {
	if freelist == NoFreelist || freelist >= uint64(len(w.c.sums)) {
		return nil
	}
	n, err := w.f.ReadNode(freelist)
	if err != nil || n.Flags != FlagFreelist {
		return nil
	}
	ids, fe := FreelistIDs(n)
	if fe != nil {
		return nil
	}
	set := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// checkFreelist validates a synced freelist: a readable freelist page, ids
// in range, none reached by the tree, and every page either reached or free.
func (w *walker) checkFreelist(freelist uint64) {
	if freelist == NoFreelist {
		return
	}
	page := u64p(freelist)
	if freelist < 2 || freelist >= uint64(len(w.c.sums)) {
		w.add(Finding{Kind: KindFreelistMalformed, Page: nil, Message: fmt.Sprintf("freelist page %d is outside the file", freelist)})
		return
	}
	n, err := w.f.ReadNode(freelist)
	if err != nil {
		w.add(Finding{Kind: KindFreelistMalformed, Page: page, Message: err.Error()})
		return
	}
	if n.Header.ID != freelist || n.Flags != FlagFreelist {
		w.add(Finding{Kind: KindFreelistMalformed, Page: page, Chain: []uint64{freelist},
			Message: fmt.Sprintf("freelist page holds id %d flags %#x", n.Header.ID, n.Flags)})
		return
	}
	w.reach[freelist] = reachFreelist
	for p := freelist + 1; p <= freelist+uint64(n.Overflow) && p < uint64(len(w.reach)); p++ {
		if w.reach[p] == reachNone {
			w.reach[p] = reachFreelist
		}
	}
	ids, fe := FreelistIDs(n)
	if fe != nil {
		w.add(Finding{Kind: KindFreelistMalformed, Page: page, Offset: i64p(fe.Offset), Chain: []uint64{freelist}, Message: fe.Msg})
		return
	}
	free := make(map[uint64]bool, len(ids))
	for i, id := range ids {
		switch {
		case id < 2 || id >= w.hwm:
			w.add(Finding{Kind: KindFreelistMalformed, Page: page, Chain: []uint64{freelist}, Element: intp(i),
				Message: fmt.Sprintf("freelist lists page %d outside [2, high-water mark %d)", id, w.hwm)})
		case id < uint64(len(w.reach)) && w.reach[id] != reachNone:
			w.add(Finding{Kind: KindFreelistReachable, Page: page, Chain: []uint64{freelist}, Element: intp(i), Child: u64p(id),
				Message: fmt.Sprintf("freelist lists page %d, which the tree reaches", id)})
		}
		free[id] = true
	}
	// Unreached, unfreed pages, reported as runs.
	limit := min(w.hwm, uint64(len(w.reach)))
	for p := uint64(2); p < limit; p++ {
		if w.reach[p] != reachNone || free[p] {
			continue
		}
		q := p
		for q+1 < limit && w.reach[q+1] == reachNone && !free[q+1] {
			q++
		}
		w.add(Finding{Kind: KindUnreachable, Page: u64p(p), Message: fmt.Sprintf("pages %d..%d are neither reached nor free", p, q)})
		p = q
	}
}
