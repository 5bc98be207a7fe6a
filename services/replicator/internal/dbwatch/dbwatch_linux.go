package dbwatch

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// events are the directory events that mean a commit or a replaced file.
const events = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_DELETE

// Watcher signals C after writes to the database.
type Watcher struct {
	c    chan struct{}
	f    *os.File // the inotify instance, non-blocking: Close ends a pending Read
	done sync.WaitGroup
}

// New watches the database at path (its directory must exist).
func New(path string) (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("dbwatch: inotify: %w", err)
	}
	dir := filepath.Dir(path)
	if _, err := unix.InotifyAddWatch(fd, dir, events); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dbwatch: watch %s: %w", dir, err)
	}
	w := &Watcher{c: make(chan struct{}, 1), f: os.NewFile(uintptr(fd), "inotify")}
	w.done.Add(1)
	go w.read(names(path))
	return w, nil
}

// C receives after the database was written; writes until it is read are
// one signal. It is closed when watching ends (Close, or the instance
// cannot be read): the shipper then polls as it does without a watcher.
func (w *Watcher) C() <-chan struct{} { return w.c }

// Close stops watching; C receives nothing more.
func (w *Watcher) Close() error {
	err := w.f.Close()
	w.done.Wait()
	return err
}

func (w *Watcher) read(watched map[string]bool) {
	defer w.done.Done()
	defer close(w.c)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return // closed, or unreadable: C is closed
		}
		if touches(buf[:n], watched) {
			w.signal()
		}
	}
}

func (w *Watcher) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// touches reports whether one of the events in buf names a watched file
// (or the queue overflowed).
func touches(buf []byte, watched map[string]bool) bool {
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
			return true
		}
		start := off + unix.SizeofInotifyEvent
		end := min(start+int(ev.Len), len(buf))
		if watched[string(bytes.TrimRight(buf[start:end], "\x00"))] {
			return true
		}
		off = end
	}
	return false
}
