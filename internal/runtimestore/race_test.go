//go:build race

package runtimestore_test

// raceBudget is what the race detector adds to an allocation budget: its
// own allocations, and sync.Pool dropping a share of what is put back.
const raceBudget = 4
