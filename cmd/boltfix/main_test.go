package main

import (
	"os"
	"testing"
)

// asMainEnv makes the test binary behave as the boltfix command: the tests
// that send signals run it as a child, and repair's start check re-executes
// os.Executable(), which under go test is this binary.
const asMainEnv = "BOLTFIX_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		return
	}
	// Children of this process (start checks) are boltfix too.
	os.Setenv(asMainEnv, "1")
	os.Exit(m.Run())
}
