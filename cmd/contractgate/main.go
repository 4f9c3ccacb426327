// Command contractgate is the wire-breaking-change gate: it compares the
// contract with the last released one and exits 1, listing the breaks, when
// a change would break rtmanager or Lobby, unless info.version's major was
// raised.
//
//	go run ./cmd/contractgate --old api/released/runtime-jobs-asyncapi.yaml --new api/runtime-jobs-asyncapi.yaml
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/contractdiff"
)

// Exit codes.
const (
	exitOK     = 0
	exitBreaks = 1
	exitUsage  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("contractgate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	oldPath := fs.String("old", "api/released/runtime-jobs-asyncapi.yaml", "the last released contract")
	newPath := fs.String("new", "api/runtime-jobs-asyncapi.yaml", "the contract as changed")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "contractgate: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	oldDoc, err := parseFile(*oldPath)
	if err != nil {
		fmt.Fprintf(stderr, "contractgate: %v\n", err)
		return exitUsage
	}
	newDoc, err := parseFile(*newPath)
	if err != nil {
		fmt.Fprintf(stderr, "contractgate: %v\n", err)
		return exitUsage
	}
	rep, err := contractdiff.Compare(oldDoc, newDoc)
	if err != nil {
		fmt.Fprintf(stderr, "contractgate: %v\n", err)
		return exitUsage
	}
	return report(rep, *oldPath, *newPath, stdout, stderr)
}

func parseFile(path string) (*api.Document, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read contract: %w", err)
	}
	doc, err := api.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

func report(rep *contractdiff.Report, oldPath, newPath string, stdout, stderr io.Writer) int {
	head := fmt.Sprintf("%s (%s) against released %s (%s)", newPath, rep.NewVersion, oldPath, rep.OldVersion)
	for _, c := range rep.Compatible() {
		fmt.Fprintf(stdout, "contractgate: compatible: %s\n", c)
	}
	breaks := rep.Breaks()
	switch {
	case len(breaks) == 0 && len(rep.Compatible()) > 0:
		fmt.Fprintf(stdout, "contractgate: %s: additive: %d compatible change(s), no wire-breaking change (a minor version bump)\n", head, len(rep.Compatible()))
		return exitOK
	case len(breaks) == 0:
		fmt.Fprintf(stdout, "contractgate: %s: no wire-breaking change\n", head)
		return exitOK
	case rep.MajorBumped:
		fmt.Fprintf(stdout, "contractgate: %s: %d wire-breaking change(s) accepted by major version bump:\n", head, len(breaks))
		for _, c := range breaks {
			fmt.Fprintf(stdout, "  - %s\n", c)
		}
		return exitOK
	default:
		fmt.Fprintf(stderr, "contractgate: %s: %d wire-breaking change(s):\n", head, len(breaks))
		for _, c := range breaks {
			fmt.Fprintf(stderr, "  - %s\n", c)
		}
		fmt.Fprintf(stderr, "contractgate: make the change compatible, or break deliberately by raising the major of info.version (now %s)\n", rep.NewVersion)
		return exitBreaks
	}
}
