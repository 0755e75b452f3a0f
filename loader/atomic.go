package loader

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// AtomicFile is a file written beside its destination and published by rename only
// when complete, so that a reader never sees a partial file at the destination and a
// failed or interrupted write leaves whatever was there unchanged.
//
// CreateAtomic creates the temporary file at once: a command creates it before any
// long work, so that a missing or read-only directory fails in a second with the
// destination's name instead of after an hour of quantizing. Writes fail with the
// context's error once it is cancelled (checked at every buffer flush, about every MiB),
// so that ^C stops a long write promptly.
//
// Where the file system allows it (Linux, O_TMPFILE), the temporary file has no name
// until Commit: a killed process leaves nothing behind. Elsewhere it is named
// ".NAME.mole-tmp-PID" (see tempPrefix), and creating the next AtomicFile for the same
// destination removes those whose process is gone.
type AtomicFile struct {
	ctx  context.Context
	path string
	dir  string
	base string
	f    *os.File
	tmp  string // the temporary file's name; "" while it is unnamed (O_TMPFILE)
	bw   *bufio.Writer
	done bool
}

// CreateAtomic starts an atomic write of path (see AtomicFile). The caller must end it
// with Commit or Abort; deferring Abort is safe after a Commit.
func CreateAtomic(ctx context.Context, path string) (*AtomicFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" || base == "." || base == ".." {
		return nil, fmt.Errorf("cannot write %s: not a file name", path)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("cannot write %s: it is a directory", path)
	}
	removeStaleTemps(dir, base)
	f, tmp, err := createTemp(dir, base)
	if err != nil {
		return nil, destError(path, err)
	}
	a := &AtomicFile{ctx: ctx, path: path, dir: dir, base: base, f: f, tmp: tmp}
	a.bw = bufio.NewWriterSize(ctxWriter{ctx, f}, 1<<20)
	return a, nil
}

// destError explains a failure to create the temporary file in terms of the destination
// the user named: the temporary file's own name means nothing to them.
func destError(path string, err error) error {
	err = bare(err)
	dir := filepath.Dir(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot write %s: directory %s does not exist", path, dir)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("cannot write %s: %s is not a directory", path, dir)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("cannot write %s: directory %s is not writable (%v)", path, dir, err)
	}
	return fmt.Errorf("cannot write %s: %v", path, err)
}

// ctxWriter fails once ctx is cancelled; it sits under the buffer, so the check costs
// one call per MiB.
type ctxWriter struct {
	ctx context.Context
	f   *os.File
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.f.Write(p)
	return n, bare(err)
}

// bare drops the temporary file's name from an error about it (a full disk, say): the
// callers' messages name the destination, which is what the user knows.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// Path is the destination.
func (a *AtomicFile) Path() string { return a.path }

// Write buffers p for the temporary file.
func (a *AtomicFile) Write(p []byte) (int, error) {
	if a.done {
		return 0, fmt.Errorf("write %s: already committed or aborted", a.path)
	}
	return a.bw.Write(p)
}

// Commit flushes and fsyncs the temporary file and renames it over the destination. It
// fails, leaving the destination unchanged, when the context is cancelled.
func (a *AtomicFile) Commit() (err error) {
	if a.done {
		return fmt.Errorf("write %s: already committed or aborted", a.path)
	}
	defer func() {
		if err != nil {
			a.Abort()
		}
	}()
	wrap := func(err error) error { return fmt.Errorf("write %s: %w", a.path, bare(err)) }
	if err = a.bw.Flush(); err != nil {
		return wrap(err)
	}
	if err = a.ctx.Err(); err != nil {
		return wrap(err)
	}
	// A temporary file is created 0600; a model file is an ordinary readable file.
	if err = a.f.Chmod(0o644); err != nil {
		return wrap(err)
	}
	if err = a.f.Sync(); err != nil {
		return wrap(err)
	}
	if a.tmp == "" {
		if a.tmp, err = linkTemp(a.f, a.dir, a.base); err != nil {
			return wrap(err)
		}
	}
	if err = a.f.Close(); err != nil {
		return wrap(err)
	}
	if err = os.Rename(a.tmp, a.path); err != nil {
		return wrap(err)
	}
	a.done = true
	// Persist the rename itself; best effort, as some file systems refuse to sync a
	// directory and the file's contents are already durable.
	if d, derr := os.Open(a.dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Abort removes the temporary file; the destination is left as it was. It does nothing
// after Commit or a previous Abort.
func (a *AtomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.f.Close()
	if a.tmp != "" {
		os.Remove(a.tmp)
	}
}

// WriteFileAtomic writes path through write as an AtomicFile: the bytes go to a
// temporary file in the same directory (so the rename cannot cross file systems), which
// is flushed, fsynced and then renamed over path. A crash or error therefore never
// leaves a partial file at path; the temporary file is removed on error.
func WriteFileAtomic(path string, write func(w io.Writer) error) error {
	return WriteFileAtomicContext(context.Background(), path, write)
}

// WriteFileAtomicContext is WriteFileAtomic stopped by ctx: once ctx is cancelled the
// writes fail, the temporary file is removed and path is left unchanged.
func WriteFileAtomicContext(ctx context.Context, path string, write func(w io.Writer) error) error {
	a, err := CreateAtomic(ctx, path)
	if err != nil {
		return err
	}
	defer a.Abort()
	if err := write(a); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return a.Commit()
}

// tempPrefix starts the names of NAME's named temporary files: ".NAME.mole-tmp-PID",
// with "-N" added when the same process writes NAME twice at once. The name says what
// the file is and which process owns it, so that a later write can remove it once that
// process is gone.
func tempPrefix(base string) string { return "." + base + ".mole-tmp-" }

// createNamed creates a named temporary file for base in dir.
func createNamed(dir, base string) (*os.File, string, error) {
	name := filepath.Join(dir, tempPrefix(base)+strconv.Itoa(os.Getpid()))
	for i := 2; ; i++ {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, name, nil
		}
		if !errors.Is(err, fs.ErrExist) || i > 10000 {
			return nil, "", err
		}
		name = filepath.Join(dir, fmt.Sprintf("%s%d-%d", tempPrefix(base), os.Getpid(), i))
	}
}

// tempPID is the process id in a temporary file's name (0 when the name is not one).
func tempPID(name, base string) int {
	rest, ok := strings.CutPrefix(name, tempPrefix(base))
	if !ok {
		return 0
	}
	rest, _, _ = strings.Cut(rest, "-")
	pid, err := strconv.Atoi(rest)
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// removeStaleTemps removes the temporary files of base in dir left by processes that
// no longer run (killed mid-write). Files of this process and of live ones are kept;
// where liveness cannot be told (processAlive), nothing is removed.
// A process id only means something on this host and in this PID namespace: two
// machines writing the same destination on a shared file system at once could take
// each other's file for stale. Named temporary files are the fallback, so that case
// needs a file system without O_TMPFILE as well.
func removeStaleTemps(dir, base string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, e := range ents {
		pid := tempPID(e.Name(), base)
		if pid == 0 || pid == self || e.IsDir() || processAlive(pid) {
			continue
		}
		os.Remove(filepath.Join(dir, e.Name()))
	}
}
