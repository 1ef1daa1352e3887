package salvage

import "sort"

// LostRange is an inclusive range of main revisions that may hold lost
// records, with why; To 0 means open-ended.
type LostRange struct {
	From, To int64
	Why      string
}

// MergeLost sorts ranges and merges the ones that overlap or touch,
// keeping the first reason of each merged range. It returns the ranges as
// [from, to] pairs and their reasons, index for index.
func MergeLost(in []LostRange) ([][2]int64, []string) {
	sort.SliceStable(in, func(i, j int) bool { return in[i].From < in[j].From })
	ranges, reasons := [][2]int64{}, []string{}
	for _, x := range in {
		if n := len(ranges); n > 0 {
			last := &ranges[n-1]
			if last[1] == 0 || x.From <= last[1]+1 {
				if last[1] != 0 && (x.To == 0 || x.To > last[1]) {
					last[1] = x.To
				}
				continue
			}
		}
		ranges = append(ranges, [2]int64{x.From, x.To})
		reasons = append(reasons, x.Why)
	}
	return ranges, reasons
}
