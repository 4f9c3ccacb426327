package testengine

// TB is the part of testing.TB the helpers use, and M the part of
// *testing.M that Main uses. Naming them here instead of importing
// "testing" keeps that package (and its flags) out of rtdemo, which links
// testengine for `make run RUNTIME=docker`.
type TB interface {
	Helper()
	Cleanup(func())
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// M is what Main needs of *testing.M.
type M interface {
	Run() int
}
