//go:build !race

package runtimestore_test

// raceBudget: see race_test.go.
const raceBudget = 0
