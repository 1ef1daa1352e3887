//go:build !linux

package salvage

// dropMappedPages does nothing off Linux.
func dropMappedPages(addr uintptr, size int64) (stop func()) { return func() {} }
