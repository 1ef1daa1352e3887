package salvage

import "fmt"

// DefaultPageSize is the smallest page size salvage writes unless told
// otherwise: 16 KiB.
//
// Why not the input's 4 KiB: bbolt writes every page with a call of its
// own and builds, allocates and spills a node per page, and at 4 KiB a
// record of a few KiB (a Kubernetes object) takes an overflow page of its
// own with most of it empty. At 16 KiB a salvage of a 5 GiB etcd db writes
// a fifth fewer bytes (4.0 against 5.0 GB) and takes a third less time
// (docs/scale.md §2). Every bbolt reads the page size from the file's meta
// page, and etcd creates dbs of 16 and 64 KiB pages itself on kernels with
// such pages (arm64, ppc64le): it never sets a page size, so bbolt takes
// the OS's. etcd's next defragment writes the OS's page size again. What a
// bigger page costs etcd meanwhile is the size of a commit: each dirty leaf
// is written whole, 16 KiB instead of 4.
const DefaultPageSize = 16 << 10

// MinPageSize and MaxPageSize bound the page sizes salvage writes: bbolt's
// meta page must fit in one page, and 64 KiB is the largest page size of
// any kernel etcd runs on.
const (
	MinPageSize = 4 << 10
	MaxPageSize = 64 << 10
)

// ValidPageSize refuses a page size salvage will not write: a power of two
// from MinPageSize to MaxPageSize, or 0 (choose).
func ValidPageSize(n int) error {
	if n == 0 || n >= MinPageSize && n <= MaxPageSize && n&(n-1) == 0 {
		return nil
	}
	return fmt.Errorf("page size %d: want a power of two from %d to %d", n, MinPageSize, MaxPageSize)
}

// OutputPageSize is the page size of the new file: the one asked for, else
// the input's or DefaultPageSize, whichever is larger: salvage never
// writes smaller pages than the input had (a db made on a kernel with
// 64 KiB pages keeps them).
func OutputPageSize(input, asked int) int {
	if asked != 0 {
		return asked
	}
	return min(max(input, DefaultPageSize), MaxPageSize)
}
