package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// instanceOwner returns the name a daemon's task leases carry: the host name and an id kept in
// data_dir. A daemon restarted after a crash thus takes over the leases of its previous run at once
// instead of waiting for their TTL. It locks data_dir until release is called, because two live
// processes sharing the name could both take one lease.
func (a *app) instanceOwner() (owner string, release func(), err error) {
	dir := a.cfg.DataDir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", nil, fmt.Errorf("create data_dir: %w", err)
	}
	lockPath := filepath.Join(dir, "instance.lock")
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return "", nil, fmt.Errorf("open %s: %w", lockPath, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(lockPath)
		lock.Close()
		return "", nil, fmt.Errorf("data_dir %s is in use by another tisync daemon (PID %s): give each daemon its own data_dir", dir, strings.TrimSpace(string(holder)))
	}
	_ = lock.Truncate(0)
	_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)

	idPath := filepath.Join(dir, "instance-id")
	id, err := os.ReadFile(idPath)
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			lock.Close()
			return "", nil, err
		}
		id = []byte(hex.EncodeToString(b))
		err = os.WriteFile(idPath, append(id, '\n'), 0o640)
	}
	if err != nil {
		lock.Close()
		return "", nil, fmt.Errorf("instance id in %s: %w", idPath, err)
	}
	host, _ := os.Hostname()
	return host + "/" + strings.TrimSpace(string(id)), func() { lock.Close() }, nil
}
