package testengine

import (
	"context"
	"os"
	"strconv"
	"sync"
	"time"
)

// RequireEnv makes a missing engine a test failure instead of a skip when
// set to 1; so does CI=true.
const RequireEnv = "RTMANAGER_REQUIRE_ENGINE"

var shared struct {
	once sync.Once
	mu   sync.Mutex
	e    *Engine
	err  error
}

// Shared starts one engine per process on first use, so a test binary pays
// its start-up once. Main closes it.
func Shared() (*Engine, error) {
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		e, err := New(ctx, Options{})
		shared.mu.Lock()
		shared.e, shared.err = e, err
		shared.mu.Unlock()
	})
	return shared.e, shared.err
}

// Required is true when a missing engine must fail tests: CI=true or
// RTMANAGER_REQUIRE_ENGINE=1.
func Required() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci || os.Getenv(RequireEnv) == "1"
}

// Require returns the shared engine. Without one the test is skipped with
// the reason, or fails with it when Required.
func Require(tb TB) *Engine {
	tb.Helper()
	e, err := Shared()
	if err != nil {
		if Required() {
			tb.Fatalf("a real container engine is required here (CI=true or %s=1): %v", RequireEnv, err)
		}
		tb.Skipf("no container engine: %v", err)
	}
	return e
}

// Main runs the tests and then closes the shared engine, if one was
// started: call it from TestMain.
func Main(m M) {
	code := m.Run()
	shared.mu.Lock()
	e := shared.e
	shared.mu.Unlock()
	if e != nil {
		_ = e.Close()
	}
	os.Exit(code)
}
