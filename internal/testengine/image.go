package testengine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildImage puts a static build of ./gameengine into a FROM scratch image,
// tagged with the binary's hash so an unchanged engine is built once. No
// registry is needed.
func (e *Engine) buildImage(ctx context.Context, prebuilt string) error {
	bctx := filepath.Join(e.dir, "image")
	if err := os.MkdirAll(bctx, 0o755); err != nil {
		return fmt.Errorf("testengine: %w", err)
	}
	defer os.RemoveAll(bctx)
	bin := filepath.Join(bctx, "gameengine")
	if prebuilt != "" {
		if err := copyFile(prebuilt, bin); err != nil {
			return fmt.Errorf("testengine: game engine binary: %w", err)
		}
	} else {
		cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", bin, "galaxy/rtmanager/internal/testengine/gameengine")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("testengine: build the test game engine (go build, from inside the rtmanager module): %v: %s", err, oneLine(out))
		}
	}
	sum, err := fileHash(bin)
	if err != nil {
		return fmt.Errorf("testengine: %w", err)
	}
	e.image = "localhost/rtmanager-testengine:" + sum[:16]
	if _, err := e.cli.ImageInspect(ctx, e.image); err == nil {
		return nil
	}
	containerfile := "FROM scratch\nCOPY gameengine /gameengine\nENTRYPOINT [\"/gameengine\"]\n"
	if err := os.WriteFile(filepath.Join(bctx, "Containerfile"), []byte(containerfile), 0o644); err != nil {
		return fmt.Errorf("testengine: %w", err)
	}
	cmd := exec.CommandContext(ctx, "podman", "build", "-q", "-t", e.image, "-f", filepath.Join(bctx, "Containerfile"), bctx)
	cmd.Env = e.Env()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testengine: podman build of the test image: %v: %s", err, oneLine(out))
	}
	return nil
}

func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// oneLine joins a command's output into one line for an error.
func oneLine(out []byte) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", " | ")), " ")
}
