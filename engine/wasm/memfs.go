package wasm

import (
	"io/fs"
	"slices"
	"strings"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// memFS is a flat directory of files in memory, mounted at /in (read-only,
// the job's inputs) or /out (writable, results). Every stat it answers is a
// function of the files alone (mtime FixedWalltime, no host inode), and it
// counts open files: a job may hold none across steps, since a descriptor's
// position is state the state hash does not cover. Files do not seek
// (fd_seek fails; go vet refuses a Seek method of wazero's signature), so
// they are read and written from the start, or appended to.
type memFS struct {
	experimentalsys.UnimplementedFS
	files    map[string]*memData
	readOnly bool
	open     int        // open regular files
	cap      func() int // bytes of output so far (MaxOutputBytes caps it)
}

type memData struct{ b []byte }

func newMemFS(blobs []Blob, readOnly bool) *memFS {
	m := &memFS{files: map[string]*memData{}, readOnly: readOnly}
	for _, b := range blobs {
		m.files[b.Name] = &memData{b: b.Data}
	}
	return m
}

// blobs returns the files, sorted by name (copies).
func (m *memFS) blobs() []Blob {
	names := make([]string, 0, len(m.files))
	for n := range m.files {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]Blob, len(names))
	for i, n := range names {
		out[i] = Blob{Name: n, Data: append([]byte(nil), m.files[n].b...)}
	}
	return out
}

func (m *memFS) size() int {
	n := 0
	for _, f := range m.files {
		n += len(f.b)
	}
	return n
}

var epochNanos = sys.EpochNanos(FixedWalltime * 1_000_000_000)

// name maps a path to a file name: "" for the directory itself.
func memName(path string) (string, experimentalsys.Errno) {
	path = strings.TrimPrefix(strings.TrimPrefix(path, "/"), "./")
	if path == "." || path == "" {
		return "", 0
	}
	if strings.Contains(path, "/") || path == ".." {
		return "", experimentalsys.ENOENT
	}
	return path, 0
}

func (m *memFS) mode() fs.FileMode {
	if m.readOnly {
		return 0o444
	}
	return 0o644
}

func (m *memFS) OpenFile(path string, flag experimentalsys.Oflag, _ fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	name, errno := memName(path)
	if errno != 0 {
		return nil, errno
	}
	acc := flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY)
	write := acc != experimentalsys.O_RDONLY || flag&(experimentalsys.O_CREAT|experimentalsys.O_TRUNC|experimentalsys.O_APPEND) != 0
	if name == "" {
		if write {
			return nil, experimentalsys.EISDIR
		}
		return &memFile{fs: m, dir: true}, 0
	}
	if flag&experimentalsys.O_DIRECTORY != 0 {
		return nil, experimentalsys.ENOTDIR
	}
	if write && m.readOnly {
		return nil, experimentalsys.EROFS
	}
	d, ok := m.files[name]
	switch {
	case ok && flag&experimentalsys.O_CREAT != 0 && flag&experimentalsys.O_EXCL != 0:
		return nil, experimentalsys.EEXIST
	case !ok && flag&experimentalsys.O_CREAT == 0:
		return nil, experimentalsys.ENOENT
	case !ok:
		d = &memData{}
		m.files[name] = d
	}
	if flag&experimentalsys.O_TRUNC != 0 {
		d.b = nil
	}
	m.open++
	return &memFile{
		fs: m, data: d, name: name,
		read:   acc != experimentalsys.O_WRONLY,
		write:  acc != experimentalsys.O_RDONLY,
		append: flag&experimentalsys.O_APPEND != 0,
	}, 0
}

func (m *memFS) Stat(path string) (sys.Stat_t, experimentalsys.Errno) {
	name, errno := memName(path)
	if errno != 0 {
		return sys.Stat_t{}, errno
	}
	if name == "" {
		return sys.Stat_t{Mode: fs.ModeDir | 0o555, Nlink: 1, Atim: epochNanos, Mtim: epochNanos, Ctim: epochNanos}, 0
	}
	d, ok := m.files[name]
	if !ok {
		return sys.Stat_t{}, experimentalsys.ENOENT
	}
	return sys.Stat_t{Mode: m.mode(), Nlink: 1, Size: int64(len(d.b)), Atim: epochNanos, Mtim: epochNanos, Ctim: epochNanos}, 0
}

func (m *memFS) Lstat(path string) (sys.Stat_t, experimentalsys.Errno) { return m.Stat(path) }

func (m *memFS) Unlink(path string) experimentalsys.Errno {
	name, errno := memName(path)
	switch {
	case errno != 0:
		return errno
	case m.readOnly:
		return experimentalsys.EROFS
	case name == "":
		return experimentalsys.EISDIR
	case m.files[name] == nil:
		return experimentalsys.ENOENT
	}
	delete(m.files, name)
	return 0
}

func (m *memFS) Rename(from, to string) experimentalsys.Errno {
	a, errno := memName(from)
	if errno != 0 {
		return errno
	}
	b, errno := memName(to)
	switch {
	case errno != 0:
		return errno
	case m.readOnly:
		return experimentalsys.EROFS
	case a == "" || b == "":
		return experimentalsys.EISDIR
	case m.files[a] == nil:
		return experimentalsys.ENOENT
	}
	m.files[b] = m.files[a]
	delete(m.files, a)
	return 0
}

func (m *memFS) Mkdir(path string, _ fs.FileMode) experimentalsys.Errno {
	if name, errno := memName(path); errno == 0 && name == "" {
		return experimentalsys.EEXIST
	}
	return experimentalsys.EPERM // flat: no subdirectories
}

// memFile is an open file or the directory.
type memFile struct {
	experimentalsys.UnimplementedFile
	fs                  *memFS
	data                *memData
	name                string
	dir                 bool
	read, write, append bool
	pos                 int64
	dirDone             bool // the directory was listed (no rewind: files do not seek)
	closed              bool
}

func (f *memFile) IsDir() (bool, experimentalsys.Errno) { return f.dir, 0 }
func (f *memFile) IsAppend() bool                       { return f.append }
func (f *memFile) SetAppend(on bool) experimentalsys.Errno {
	f.append = on
	return 0
}

func (f *memFile) Stat() (sys.Stat_t, experimentalsys.Errno) {
	if f.dir {
		return f.fs.Stat(".")
	}
	return sys.Stat_t{Mode: f.fs.mode(), Nlink: 1, Size: int64(len(f.data.b)), Atim: epochNanos, Mtim: epochNanos, Ctim: epochNanos}, 0
}

func (f *memFile) Read(buf []byte) (int, experimentalsys.Errno) {
	n, errno := f.Pread(buf, f.pos)
	f.pos += int64(n)
	return n, errno
}

func (f *memFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	switch {
	case f.dir:
		return 0, experimentalsys.EISDIR
	case !f.read:
		return 0, experimentalsys.EBADF
	case off < 0:
		return 0, experimentalsys.EINVAL
	case off >= int64(len(f.data.b)):
		return 0, 0
	}
	return copy(buf, f.data.b[off:]), 0
}

func (f *memFile) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	if !f.dir {
		return nil, experimentalsys.ENOTDIR
	}
	if f.dirDone {
		return nil, 0
	}
	f.dirDone = true
	var out []experimentalsys.Dirent
	for _, b := range f.fs.blobs() {
		out = append(out, experimentalsys.Dirent{Name: b.Name})
	}
	return out, 0
}

func (f *memFile) Write(buf []byte) (int, experimentalsys.Errno) {
	if f.append && !f.dir {
		f.pos = int64(len(f.data.b))
	}
	n, errno := f.Pwrite(buf, f.pos)
	f.pos += int64(n)
	return n, errno
}

func (f *memFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	switch {
	case f.dir:
		return 0, experimentalsys.EISDIR
	case !f.write:
		return 0, experimentalsys.EBADF
	case off < 0:
		return 0, experimentalsys.EINVAL
	}
	if end := off + int64(len(buf)); end > int64(len(f.data.b)) {
		if f.fs.cap != nil && f.fs.cap()+int(end-int64(len(f.data.b))) > MaxOutputBytes {
			return 0, experimentalsys.EIO // the outputs' cap
		}
		f.data.b = append(f.data.b, make([]byte, end-int64(len(f.data.b)))...)
	}
	return copy(f.data.b[off:], buf), 0
}

func (f *memFile) Truncate(size int64) experimentalsys.Errno {
	switch {
	case f.dir:
		return experimentalsys.EISDIR
	case !f.write:
		return experimentalsys.EBADF
	case size < 0:
		return experimentalsys.EINVAL
	}
	if size <= int64(len(f.data.b)) {
		f.data.b = f.data.b[:size]
		return 0
	}
	if f.fs.cap != nil && f.fs.cap()+int(size-int64(len(f.data.b))) > MaxOutputBytes {
		return experimentalsys.EIO
	}
	f.data.b = append(f.data.b, make([]byte, size-int64(len(f.data.b)))...)
	return 0
}

func (f *memFile) Sync() experimentalsys.Errno     { return 0 }
func (f *memFile) Datasync() experimentalsys.Errno { return 0 }

func (f *memFile) Close() experimentalsys.Errno {
	if !f.closed && !f.dir {
		f.fs.open--
	}
	f.closed = true
	return 0
}
