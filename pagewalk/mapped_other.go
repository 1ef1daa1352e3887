//go:build !linux

package pagewalk

import "os"

// mapFile is not used off Linux: the census reads with pread.
func mapFile(*os.File, int64) []byte { return nil }

func unmapFile([]byte)      {}
func populateMapped([]byte) {}
func dropMapped([]byte)     {}
