package kube

import (
	"errors"
	"fmt"
)

// Sentinels for the ways a value fails to become an object; a *DecodeError
// wraps one of them, so callers can use errors.Is.
var (
	// ErrNotKubernetes: neither the protobuf envelope, JSON, nor an
	// encryption prefix.
	ErrNotKubernetes = errors.New("not a Kubernetes value")
	// ErrEncrypted: encrypted at rest and no key in the keyring fits.
	ErrEncrypted = errors.New("encrypted at rest")
	// ErrDecrypt: a configured key was tried and the ciphertext did not
	// open (wrong key, or damaged bytes).
	ErrDecrypt = errors.New("decryption failed")
	// ErrUnknownType: the envelope names a type no registered scheme knows;
	// Object still carries its apiVersion and kind.
	ErrUnknownType = errors.New("type not in the scheme")
	// ErrMalformed: the bytes claim a format and do not parse as it.
	ErrMalformed = errors.New("malformed value")
	// ErrPanic: a third-party decoder panicked on these bytes. This is a
	// bug to report; the fuzz targets fail on it.
	ErrPanic = errors.New("decoder panicked")
)

// DecodeError says why a value did not decode, in words fit for a report.
type DecodeError struct {
	Encoding string // "protobuf", "json", "encrypted", "unknown"
	Err      error  // wraps a sentinel above
}

func (e *DecodeError) Error() string { return e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

func decodeErr(enc string, sentinel error, format string, args ...any) *DecodeError {
	if format == "" {
		return &DecodeError{Encoding: enc, Err: sentinel}
	}
	return &DecodeError{Encoding: enc, Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))}
}
