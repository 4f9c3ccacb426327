package testengine

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Packages are the Debian packages of the engine, installed with
// --no-install-recommends (scripts/ensure-podman.sh installs the same list
// for `make tools`).
var Packages = []string{"podman", "runc", "conmon", "netavark", "aardvark-dns", "iptables", "catatonit"}

// installHint is the one line said when the packages are missing and cannot
// be installed here.
func installHint(missing []string) string {
	return fmt.Sprintf("container engine packages missing (%s): run 'make tools' as root, or 'sudo apt-get install --no-install-recommends %s'",
		strings.Join(missing, " "), strings.Join(Packages, " "))
}

// missingPackages lists the packages that are not installed. Without dpkg
// (not Debian) only the podman and runc binaries are looked for.
func missingPackages() []string {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		var missing []string
		for _, bin := range []string{"podman", "runc"} {
			if _, err := exec.LookPath(bin); err != nil {
				missing = append(missing, bin)
			}
		}
		return missing
	}
	var missing []string
	for _, p := range Packages {
		out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", p).Output()
		if err != nil || !strings.HasPrefix(string(out), "ii") {
			missing = append(missing, p)
		}
	}
	return missing
}

// ensureInstalled installs the missing packages as root with apt-get, one
// installer at a time across processes (test binaries run in parallel);
// otherwise it returns the one-line hint.
func ensureInstalled() error {
	missing := missingPackages()
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s", installHint(missing))
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("%s", installHint(missing))
	}
	lock, err := os.OpenFile(os.TempDir()+"/rtmanager-testengine-install.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("testengine: install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("testengine: install lock: %w", err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if missing = missingPackages(); len(missing) == 0 {
		return nil // another process installed them while we waited
	}
	fmt.Fprintf(os.Stderr, "testengine: installing %s (apt-get, about 30 s)\n", strings.Join(Packages, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	update := exec.Command("apt-get", "update", "-qq")
	update.Env = env
	if out, err := update.CombinedOutput(); err != nil {
		return fmt.Errorf("container engine packages missing (%s); apt-get update failed: %v: %s", strings.Join(missing, " "), err, lastLine(out))
	}
	install := exec.Command("apt-get", append([]string{"install", "-y", "-qq", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120"}, Packages...)...)
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil {
		return fmt.Errorf("container engine packages missing (%s); apt-get install failed: %v: %s", strings.Join(missing, " "), err, lastLine(out))
	}
	if missing = missingPackages(); len(missing) > 0 {
		return fmt.Errorf("%s", installHint(missing))
	}
	return nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
