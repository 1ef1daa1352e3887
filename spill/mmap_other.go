//go:build !unix

package spill

import (
	"errors"
	"os"
)

func mapShared(*os.File, int64) ([]byte, error) {
	return nil, errors.New("no shared file mappings on this platform")
}

func unmap([]byte) error { return nil }
