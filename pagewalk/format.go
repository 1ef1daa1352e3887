package pagewalk

// On-disk constants of the bbolt file format (go.etcd.io/bbolt v1.5.0,
// internal/common). All integers are native little-endian; boltfix only
// supports little-endian files, which is every platform etcd ships on.
const (
	PageHeaderSize    = 16 // id u64 | flags u16 | count u16 | overflow u32
	BranchElementSize = 16 // pos u32 | ksize u32 | pgid u64
	LeafElementSize   = 16 // flags u32 | pos u32 | ksize u32 | vsize u32
	BucketHeaderSize  = 16 // root u64 | sequence u64
	metaBodySize      = 64 // magic .. checksum
	metaChecksummed   = 56 // the checksum covers the body up to itself

	// Page flags: exactly one must be set on a valid page.
	FlagBranch   uint16 = 0x01
	FlagLeaf     uint16 = 0x02
	FlagMeta     uint16 = 0x04
	FlagFreelist uint16 = 0x10

	// LeafFlagBucket marks a leaf element whose value is a bucket header.
	LeafFlagBucket uint32 = 0x01

	Magic   uint32 = 0xED0CDAED
	Version uint32 = 2

	// NoFreelist is meta.freelist when the db runs with NoFreelistSync, as
	// etcd always does on Linux: the free set is implied by the tree.
	NoFreelist uint64 = 0xFFFFFFFFFFFFFFFF

	// freelistCountOverflow in the header count means the real count is the
	// u64 that starts the page body.
	freelistCountOverflow = 0xFFFF

	// MinPageSize and MaxPageSize bound what boltfix accepts as a page size.
	// bbolt takes the OS page size (4 KiB on amd64, 16 KiB or 64 KiB on some
	// arm64 and ppc64 kernels) unless told otherwise.
	MinPageSize = 512
	MaxPageSize = 1 << 16

	// maxTreeDepth bounds recursion. bbolt trees are a handful of levels deep;
	// anything deeper is a cycle the visited set missed or a hostile file.
	maxTreeDepth = 64
	// maxBucketDepth bounds bucket nesting for the same reason.
	maxBucketDepth = 32
)

// PageType is what a page's header flags say it is.
type PageType uint8

const (
	TypeInvalid PageType = iota // no flag or several flags set
	TypeBranch
	TypeLeaf
	TypeMeta
	TypeFreelist
)

func typeOfFlags(flags uint16) PageType {
	switch flags {
	case FlagBranch:
		return TypeBranch
	case FlagLeaf:
		return TypeLeaf
	case FlagMeta:
		return TypeMeta
	case FlagFreelist:
		return TypeFreelist
	}
	return TypeInvalid
}

func (t PageType) String() string {
	switch t {
	case TypeBranch:
		return "branch"
	case TypeLeaf:
		return "leaf"
	case TypeMeta:
		return "meta"
	case TypeFreelist:
		return "freelist"
	}
	return "invalid"
}
