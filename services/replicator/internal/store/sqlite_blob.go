package store

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite loads a value whole to read any part of it with SQL (substr): a
// large row of the change log (a 50 MiB blob is a 100 MiB literal) would
// cost its whole size in the C heap for every slice, and the C heap keeps
// it. Incremental blob I/O (sqlite3_blob_read) reads only the pages of the
// slice. The driver (modernc.org/sqlite) does not offer it; it is called
// on the connection's own handle, found by blobHandle.

// errNoBlobIO: the driver's connection is not the one blobHandle knows.
var errNoBlobIO = errors.New("incremental blob I/O is not available with this SQLite driver")

// blobHandle is the C handle of driver connection dc (modernc.org/sqlite's
// conn: fields db and tls), or errNoBlobIO.
func blobHandle(dc any) (*libc.TLS, uintptr, error) {
	v := reflect.ValueOf(dc)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, 0, errNoBlobIO
	}
	db, tls := v.Elem().FieldByName("db"), v.Elem().FieldByName("tls")
	if !db.IsValid() || db.Kind() != reflect.Uintptr || !tls.IsValid() || tls.Type() != reflect.TypeFor[*libc.TLS]() || db.Uint() == 0 || tls.IsNil() {
		return nil, 0, errNoBlobIO
	}
	return (*libc.TLS)(tls.UnsafePointer()), uintptr(db.Uint()), nil
}

// blobSlice is how many bytes writeBlob copies at a time: a copy is not
// preemptible, and a copy of a whole 50 MiB value on a starved machine held
// off the collector's stop of the world for seconds (every goroutine of the
// process, the monitor's heartbeats too, waited).
const blobSlice = 1 << 20

// openBlob opens column col of the row rowid of table tbl in schema main
// for incremental I/O (for writing if write), on driver connection dc, in
// the transaction open there. The caller calls done once finished.
func openBlob(dc any, tbl, col string, rowid int64, write bool) (tls *libc.TLS, db, blob uintptr, done func(), err error) {
	tls, db, err = blobHandle(dc)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	var names [3]uintptr
	free := func() {
		for _, p := range names {
			if p != 0 {
				libc.Xfree(tls, p)
			}
		}
	}
	for i, s := range []string{"main", tbl, col} {
		if names[i], err = libc.CString(s); err != nil {
			free()
			return nil, 0, 0, nil, err
		}
	}
	defer free()
	pp := libc.Xmalloc(tls, libc.Tsize_t(unsafe.Sizeof(uintptr(0))))
	if pp == 0 {
		return nil, 0, 0, nil, errors.New("blob I/O: out of memory")
	}
	defer libc.Xfree(tls, pp)
	flags := int32(0)
	if write {
		flags = 1
	}
	if rc := sqlite3.Xsqlite3_blob_open(tls, db, names[0], names[1], names[2], rowid, flags, pp); rc != sqlite3.SQLITE_OK {
		return nil, 0, 0, nil, fmt.Errorf("open %s.%s of row %d: %s", tbl, col, rowid, libc.GoString(sqlite3.Xsqlite3_errmsg(tls, db)))
	}
	blob = libc.AtomicLoadPUintptr(pp)
	return tls, db, blob, func() { sqlite3.Xsqlite3_blob_close(tls, blob) }, nil
}

// readBlob reads n bytes (fewer at the end) at off of column col of the
// row rowid of table tbl in schema main, on driver connection dc, in the
// transaction open there.
func readBlob(dc any, tbl, col string, rowid int64, off, n int) ([]byte, error) {
	tls, db, blob, done, err := openBlob(dc, tbl, col, rowid, false)
	if err != nil {
		return nil, err
	}
	defer done()
	size := int(sqlite3.Xsqlite3_blob_bytes(tls, blob))
	if off < 0 || off > size {
		return nil, fmt.Errorf("read %s.%s of row %d: offset %d of %d bytes", tbl, col, rowid, off, size)
	}
	n = min(n, size-off)
	if n == 0 {
		return []byte{}, nil
	}
	buf := libc.Xmalloc(tls, libc.Tsize_t(n))
	if buf == 0 {
		return nil, fmt.Errorf("read blob: cannot allocate %d bytes", n)
	}
	defer libc.Xfree(tls, buf)
	if rc := sqlite3.Xsqlite3_blob_read(tls, blob, buf, int32(n), int32(off)); rc != sqlite3.SQLITE_OK {
		return nil, fmt.Errorf("read %s.%s of row %d: %s", tbl, col, rowid, libc.GoString(sqlite3.Xsqlite3_errmsg(tls, db)))
	}
	// buf is C memory (outside the Go heap, never moved): read as the
	// driver reads a column's bytes, blobSlice bytes at a time.
	out, c := make([]byte, n), cBytes(buf, n)
	for off := 0; off < n; off += blobSlice {
		copy(out[off:], c[off:min(off+blobSlice, n)])
	}
	return out, nil
}

// cBytes is the C memory at p, n bytes, as a slice.
func cBytes(p uintptr, n int) []byte {
	return unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&p))), n)
}

// writeBlob writes b at offset 0 of column col of the row rowid of table
// tbl in schema main, on driver connection dc, in the transaction open
// there, blobSlice bytes at a time. The column must hold a blob of len(b)
// bytes already (zeroblob).
func writeBlob(dc any, tbl, col string, rowid int64, b []byte) error {
	tls, db, blob, done, err := openBlob(dc, tbl, col, rowid, true)
	if err != nil {
		return err
	}
	defer done()
	if size := int(sqlite3.Xsqlite3_blob_bytes(tls, blob)); size != len(b) {
		return fmt.Errorf("write %s.%s of row %d: it holds %d bytes, not %d", tbl, col, rowid, size, len(b))
	}
	n := min(blobSlice, len(b))
	if n == 0 {
		return nil
	}
	buf := libc.Xmalloc(tls, libc.Tsize_t(n))
	if buf == 0 {
		return fmt.Errorf("write blob: cannot allocate %d bytes", n)
	}
	defer libc.Xfree(tls, buf)
	c := cBytes(buf, n)
	for off := 0; off < len(b); off += n {
		k := copy(c, b[off:])
		if rc := sqlite3.Xsqlite3_blob_write(tls, blob, buf, int32(k), int32(off)); rc != sqlite3.SQLITE_OK {
			return fmt.Errorf("write %s.%s of row %d: %s", tbl, col, rowid, libc.GoString(sqlite3.Xsqlite3_errmsg(tls, db)))
		}
	}
	return nil
}
