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

// readBlob reads n bytes (fewer at the end) at off of column col of the
// row rowid of table tbl in schema main, on driver connection dc, in the
// transaction open there.
func readBlob(dc any, tbl, col string, rowid int64, off, n int) ([]byte, error) {
	tls, db, err := blobHandle(dc)
	if err != nil {
		return nil, err
	}
	names := [3]uintptr{}
	defer func() {
		for _, p := range names {
			if p != 0 {
				libc.Xfree(tls, p)
			}
		}
	}()
	for i, s := range []string{"main", tbl, col} {
		if names[i], err = libc.CString(s); err != nil {
			return nil, err
		}
	}
	pp := libc.Xmalloc(tls, libc.Tsize_t(unsafe.Sizeof(uintptr(0))))
	if pp == 0 {
		return nil, errors.New("read blob: out of memory")
	}
	defer libc.Xfree(tls, pp)
	if rc := sqlite3.Xsqlite3_blob_open(tls, db, names[0], names[1], names[2], rowid, 0, pp); rc != sqlite3.SQLITE_OK {
		return nil, fmt.Errorf("open %s.%s of row %d: %s", tbl, col, rowid, libc.GoString(sqlite3.Xsqlite3_errmsg(tls, db)))
	}
	blob := libc.AtomicLoadPUintptr(pp)
	defer sqlite3.Xsqlite3_blob_close(tls, blob)
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
	// driver reads a column's bytes.
	c := *(*unsafe.Pointer)(unsafe.Pointer(&buf))
	out := make([]byte, n)
	copy(out, unsafe.Slice((*byte)(c), n))
	return out, nil
}
