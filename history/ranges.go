package history

import (
	"bytes"

	"github.com/boltfix/boltfix/pagewalk"
)

// uncertain holds the key-bucket ranges where the live tree cannot vouch
// for what is absent: the ranges the scan reports lost under damage. all
// means the key bucket was not reached at all.
type uncertain struct {
	all bool
	iv  [][2][]byte // open intervals; nil bound = unbounded
}

func uncertainRanges(res *pagewalk.Result) uncertain {
	kb := res.Bucket("key")
	if kb == nil {
		return uncertain{all: true}
	}
	u := uncertain{iv: res.LostKeyRanges("key")}
	return u
}

// contains reports whether revision key k lies inside an uncertain range.
func (u uncertain) contains(k []byte) bool {
	if u.all {
		return true
	}
	for _, r := range u.iv {
		if (r[0] == nil || bytes.Compare(k, r[0]) > 0) && (r[1] == nil || bytes.Compare(k, r[1]) < 0) {
			return true
		}
	}
	return false
}

// above reports whether some uncertain range reaches above revision key k:
// a newer record of any key may lie there.
func (u uncertain) above(k []byte) bool {
	if u.all {
		return true
	}
	for _, r := range u.iv {
		if r[1] == nil || bytes.Compare(r[1], k) > 0 {
			return true
		}
	}
	return false
}
